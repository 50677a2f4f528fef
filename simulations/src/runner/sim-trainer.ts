import type { RoundPlan } from '@flotilla/protocol';
import type { TrainContext, TrainOutcome, Trainer } from '@flotilla/client';
import { applyDeltaAttack, type AttackName } from '../attacks/attacks.js';
import type { Rng } from '../rng/random.js';

/** How one simulated device misbehaves. */
export interface SimBehaviour {
  /** Asked per round: does this device drop out after being selected? */
  dropsOut: (plan: RoundPlan) => boolean;
  /** Extra delay before training, ms (stragglers). */
  delayMs: number;
  /** Delta attack of a Byzantine device ('none' for honest ones; label-flip acts on data). */
  attack: AttackName;
  attackScale: number | undefined;
  rng: Rng;
}

/**
 * Wraps the real trainer with simulated behaviour: a dropout answers with a skip (the device
 * tells the coordinator it will not report, so rounds close as soon as everyone answered), a
 * straggler waits first, a Byzantine device transforms its honest delta.
 */
export class SimulatedTrainer implements Trainer {
  constructor(
    private readonly inner: Trainer,
    private readonly behaviour: SimBehaviour,
  ) {}

  async train(plan: RoundPlan, context: TrainContext): Promise<TrainOutcome> {
    if (this.behaviour.dropsOut(plan)) return { kind: 'skip', reason: 'error', detail: 'simulated dropout' };
    if (this.behaviour.delayMs > 0)
      await new Promise((resolve) => setTimeout(resolve, this.behaviour.delayMs));
    const outcome = await this.inner.train(plan, context);
    if (
      outcome.kind !== 'update' ||
      this.behaviour.attack === 'none' ||
      this.behaviour.attack === 'label-flip'
    )
      return outcome;
    const flat = new Map([...outcome.delta].map(([name, t]) => [name, t.values]));
    const attacked = applyDeltaAttack(flat, {
      attack: this.behaviour.attack,
      ...(this.behaviour.attackScale !== undefined ? { scale: this.behaviour.attackScale } : {}),
      rng: this.behaviour.rng.fork(`attack/${plan.roundId}`),
    });
    const delta = new Map(
      [...outcome.delta].map(([name, t]) => [
        name,
        { shape: t.shape, values: attacked.get(name) ?? t.values },
      ]),
    );
    return { ...outcome, delta };
  }
}
