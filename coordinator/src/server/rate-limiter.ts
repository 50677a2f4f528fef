/** Options of the per-connection token bucket. */
export interface RateLimitOptions {
  /** Sustained messages per second, default 20. */
  perSecond: number;
  /** Burst size in messages, default 100. */
  burst: number;
}

export const DEFAULT_RATE_LIMIT: RateLimitOptions = { perSecond: 20, burst: 100 };

/** A token bucket; `take()` is false when the connection is over its budget. */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();

  constructor(private readonly options: RateLimitOptions) {
    this.tokens = options.burst;
  }

  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(
      this.options.burst,
      this.tokens + ((now - this.last) / 1000) * this.options.perSecond,
    );
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
