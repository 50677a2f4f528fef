const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The device's timers and "wait for a session" promises, all cancelled at once on stop so that
 * a stopped device leaves nothing scheduled behind.
 */
export class DeviceTimers {
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly sessionWaiters = new Set<() => void>();
  private closed = false;

  /** Runs `action` after `delayMs` unless the timers are closed first. */
  schedule(action: () => void, delayMs: number): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.closed) action();
    }, delayMs);
    this.timers.add(timer);
  }

  /**
   * Resolves at the next `sessionOpened()`, at `deadline` (epoch ms; null: none) or on `close()`,
   * whichever comes first.
   */
  untilSession(deadline: number | null): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        if (timer !== undefined) {
          clearTimeout(timer);
          this.timers.delete(timer);
        }
        this.sessionWaiters.delete(done);
        resolve();
      };
      if (deadline !== null) {
        // setTimeout cannot wait longer than 2^31 - 1 ms; callers re-check after waking.
        timer = setTimeout(done, Math.min(MAX_TIMER_MS, Math.max(0, deadline - Date.now())));
        this.timers.add(timer);
      }
      this.sessionWaiters.add(done);
    });
  }

  /** Wakes everything waiting in `untilSession`. */
  sessionOpened(): void {
    for (const waiter of [...this.sessionWaiters]) waiter();
  }

  /** Cancels every timer and releases every waiter. Idempotent. */
  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.sessionOpened();
  }
}
