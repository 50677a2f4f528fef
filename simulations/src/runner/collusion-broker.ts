// The attackers' side channel of a "little is enough" scenario, in the main thread: every
// participant of a round reports the update it would send honestly; once all have (or after a
// timeout, with what arrived), the crafted vector μ − z·σ goes to the round's attackers.
import { littleIsEnough, type NamedTensors } from '../attacks/index.js';
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
      byzantine: ReadonlySet<string>;
      send: (message: HostMessage) => void;
      /** Override z_max (the scenario's attackScale). */
      z?: number;
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
    const workers = round.expected.size;
    // A lone worker has no spread to hide in: it sends the mean (z = 0) of what it has.
    const z = this.options.z ?? (workers < 2 ? 0 : undefined);
    const delta = littleIsEnough({
      honest,
      workers,
      attackers: round.attackers,
      ...(z !== undefined ? { z } : {}),
    });
    this.options.send({ type: 'crafted', index: round.index, delta });
  }
}
