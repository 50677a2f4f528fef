import type { RoundPlan } from '@flotilla/protocol';
import type { TrainContext, TrainOutcome, Trainer } from '@flotilla/client';
import { applyDeltaAttack, type AttackName, type NamedTensors } from '../attacks/attacks.js';
import { isColludingAttack } from '../attacks/colluding.js';
import type { Rng } from '../rng/random.js';

/** How the devices of a colluding-attack scenario (little-is-enough, inner-product) exchange updates through the main thread. */
export interface Collusion {
  /** Every device tells what it would send honestly (null when it has no update). */
  share(plan: RoundPlan, delta: NamedTensors | null): void;
  /** An attacker waits for the round's crafted vector. */
  crafted(plan: RoundPlan, signal: AbortSignal): Promise<NamedTensors>;
}

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
  /** Set in a colluding-attack scenario, on every device. */
  collusion?: Collusion;
}

/**
 * Attacks that skip the validation gate and transform the delta (backdoor: the boost γ on its
 * poisoned update); label-flip only poisons the data and runs the honest client.
 */
const replacesDelta = (attack: AttackName): boolean => attack !== 'none' && attack !== 'label-flip';

/**
 * Wraps the real trainer with simulated behaviour: a dropout answers with a skip (the device
 * tells the coordinator it will not report, so rounds close as soon as everyone answered), a
 * straggler waits first, a Byzantine device transforms its honest delta. An attacker does not run
 * the honest client's validation gate: it always reports.
 */
export class SimulatedTrainer implements Trainer {
  constructor(
    private readonly inner: Trainer,
    private readonly behaviour: SimBehaviour,
  ) {}

  async train(plan: RoundPlan, context: TrainContext): Promise<TrainOutcome> {
    const { attack, collusion } = this.behaviour;
    if (this.behaviour.dropsOut(plan)) return { kind: 'skip', reason: 'error', detail: 'simulated dropout' };
    if (this.behaviour.delayMs > 0)
      await new Promise((resolve) => setTimeout(resolve, this.behaviour.delayMs));
    const attacking = replacesDelta(attack);
    const outcome = await this.inner.train(
      attacking ? { ...plan, validationTolerance: null } : plan,
      context,
    );
    const flat: NamedTensors | null =
      outcome.kind === 'update' ? new Map([...outcome.delta].map(([name, t]) => [name, t.values])) : null;
    collusion?.share(plan, flat);
    if (outcome.kind !== 'update' || flat === null || !attacking) return outcome;
    const attacked = isColludingAttack(attack)
      ? await this.craftedVector(plan, context)
      : applyDeltaAttack(flat, {
          attack,
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

  private craftedVector(plan: RoundPlan, context: TrainContext): Promise<NamedTensors> {
    const { collusion } = this.behaviour;
    if (!collusion) throw new Error('a colluding attacker needs the collusion channel');
    return collusion.crafted(plan, context.signal);
  }
}
