/** Bounds on blob transfers (bodies of GET and PUT /blobs) in one coordinator process. */
export interface TransferLimits {
  /** Blob bodies moving at once in this process, GET and PUT together. Default 64. */
  maxConcurrent: number;
  /** Of those, per device (or for all auditors together); the operator has only the global bound. Default 4. */
  maxPerPrincipal: number;
}

export const DEFAULT_TRANSFER_LIMITS: TransferLimits = { maxConcurrent: 64, maxPerPrincipal: 4 };

/**
 * Counts transfers in flight. A transfer over a bound is refused at once (429 with retry-after)
 * rather than queued: a queued request would hold its socket and, for a PUT, its unread body.
 */
export class TransferLimiter {
  private total = 0;
  private readonly byPrincipal = new Map<string, number>();

  constructor(private readonly limits: TransferLimits) {}

  /**
   * Takes a slot for `principal` (null: only the global bound applies). Returns its release
   * function (idempotent), or null when a bound is reached.
   */
  tryAcquire(principal: string | null): (() => void) | null {
    if (this.total >= this.limits.maxConcurrent) return null;
    const mine = principal === null ? 0 : (this.byPrincipal.get(principal) ?? 0);
    if (principal !== null && mine >= this.limits.maxPerPrincipal) return null;
    this.total++;
    if (principal !== null) this.byPrincipal.set(principal, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      if (principal === null) return;
      const left = (this.byPrincipal.get(principal) ?? 1) - 1;
      if (left <= 0) this.byPrincipal.delete(principal);
      else this.byPrincipal.set(principal, left);
    };
  }

  /** Transfers in flight now. */
  get inFlight(): number {
    return this.total;
  }
}
