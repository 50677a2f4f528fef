// The only round state held in process memory: the timers of the rounds this process drives.
// Everything they act on is in Redis, so a process that takes over re-arms them from the stored
// deadlines (RoundManager.start), and a process that loses the lease drops them.

/** What a round waits for: its selection timeout, a retry of selection, its reporting close. */
export type RoundTimerKind = 'selection' | 'reselect' | 'reporting';

export interface RoundTimersOptions {
  /** Checked when a timer fires: false (stopped, or not the driver any more) skips its action. */
  mayRun(): boolean;
  /** Told when a timer's action rejects. */
  onError(error: unknown, timer: string): void;
}

export class RoundTimers {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly options: RoundTimersOptions) {}

  /** Runs `action` at `atMs` (epoch ms; at once if past), replacing the round's timer of that kind. */
  arm(roundId: string, kind: RoundTimerKind, atMs: number, action: () => Promise<void>): void {
    const name = `${roundId}:${kind}`;
    this.cancelNamed(name);
    const timer = setTimeout(
      () => {
        this.timers.delete(name);
        if (!this.options.mayRun()) return;
        action().catch((error: unknown) => this.options.onError(error, name));
      },
      Math.max(0, atMs - Date.now()),
    );
    this.timers.set(name, timer);
  }

  /** Cancels the round's timers of the given kinds. */
  cancel(roundId: string, ...kinds: RoundTimerKind[]): void {
    for (const kind of kinds) this.cancelNamed(`${roundId}:${kind}`);
  }

  /** Cancels every timer. */
  cancelAll(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private cancelNamed(name: string): void {
    const timer = this.timers.get(name);
    if (timer) clearTimeout(timer);
    this.timers.delete(name);
  }
}
