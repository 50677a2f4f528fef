/** Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"). */
export interface BackoffOptions {
  /** Attempts in total, the first included. Default 5. */
  attempts?: number;
  /** Delay cap of the first retry in ms. Default 200. */
  baseDelayMs?: number;
  /** Largest delay between attempts in ms. Default 5000. */
  maxDelayMs?: number;
  /** Source of randomness in [0, 1); default Math.random. */
  random?: () => number;
}

/** The delay before retry number `retry` (1-based): uniform in [0, min(max, base·2^(retry-1))]. */
export function backoffDelayMs(retry: number, options: BackoffOptions = {}): number {
  const base = options.baseDelayMs ?? 200;
  const cap = Math.min(options.maxDelayMs ?? 5000, base * 2 ** Math.max(0, retry - 1));
  return Math.floor((options.random ?? Math.random)() * cap);
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error('aborted');
}

/**
 * Runs `attempt` until it succeeds, `isRetryable(error)` says no, or the attempts run out; waits
 * `backoffDelayMs` between tries. The last error is rethrown.
 */
export async function withRetry<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  options: BackoffOptions & { isRetryable: (error: unknown) => boolean; signal?: AbortSignal },
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 5);
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (n >= attempts || !options.isRetryable(error) || options.signal?.aborted) throw error;
      await sleep(backoffDelayMs(n, options), options.signal);
    }
  }
}
