// The attackers' side channel of a colluding attack ("a little is enough", inner-product
// manipulation), in the main thread: every participant of a round reports the update it would
// send honestly; once all have (or after a timeout, with what arrived), the crafted vector goes to
// the round's attackers.
import { craftColludingUpdate, type ColludingAttack, type NamedTensors } from '../attacks/index.js';
import type { HostMessage } from './host-messages.js';

/** Well inside the runner's 120 s reporting deadline, so the attackers can still upload. */
const DEFAULT_TIMEOUT_MS = 60_000;

export class CollusionBroker {
  private round: {
    index: number;
    expected: Set<string>;
    attackers: number;
    deltas: Map<string, NamedTensors | null>;
    timer: NodeJS.Timeout;
    sent: boolean;
  } | null = null;

  constructor(
    private readonly options: {
      attack: ColludingAttack;
      byzantine: ReadonlySet<string>;
      send: (message: HostMessage) => void;
      /** The scenario's attackScale (z for little-is-enough, ε for inner-product). */
      scale?: number;
      /** Wait for late participants at most this long, ms. Default 60,000. */
      timeoutMs?: number;
    },
  ) {}

  /** A round starts: `reporting` are the participants that will train (dropouts excluded). */
  startRound(index: number, reporting: readonly string[]): void {
    this.stop();
    const attackers = reporting.filter((id) => this.options.byzantine.has(id)).length;
    this.round = {
      index,
      expected: new Set(reporting),
      attackers,
      deltas: new Map(),
      timer: setTimeout(() => this.craft(), this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      sent: attackers === 0,
    };
  }

  /** A device's honest update (null: it has none) for round `index`. */
  receive(index: number, deviceId: string, delta: NamedTensors | null): void {
    const round = this.round;
    if (round?.index !== index || !round.expected.has(deviceId)) return;
    round.deltas.set(deviceId, delta);
    if (round.deltas.size === round.expected.size) this.craft();
  }

  stop(): void {
    if (this.round) clearTimeout(this.round.timer);
    this.round = null;
  }

  private craft(): void {
    const round = this.round;
    if (!round || round.sent) return;
    clearTimeout(round.timer);
    const honest = [...round.deltas.values()].filter((d): d is NamedTensors => d !== null);
    if (honest.length === 0) return;
    round.sent = true;
    const { attack, scale } = this.options;
    const delta = craftColludingUpdate({
      attack,
      honest,
      workers: round.expected.size,
      attackers: round.attackers,
      ...(scale !== undefined ? { scale } : {}),
    });
    this.options.send({ type: 'crafted', index: round.index, delta });
  }
}
