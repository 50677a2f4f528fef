// How long a dead worker can hold a job. BullMQ gives the job being processed a lock that the
// worker renews every lockDuration / 2 from its event loop (the heartbeat: the aggregation math
// runs in a worker thread, so that loop stays free to renew); a worker that dies stops renewing,
// the lock expires, and the next stalled-job check of any live worker moves the job back to the
// queue. So a round waits in AGGREGATING at most lockDuration + stalledInterval (+ the job
// itself) after its worker is killed. BullMQ's defaults (30 s and 30 s) made that up to a minute.

/**
 * BullMQ job lock, in ms: a worker that dies holding a job loses it after at most this long.
 * Renewed every half of it, so the worker's event loop must never stall that long.
 */
export const DEFAULT_LOCK_DURATION_MS = 10_000;

/** How often each worker looks for jobs whose lock expired (stalled jobs), in ms. */
export const DEFAULT_STALLED_INTERVAL_MS = 5_000;

/** BullMQ worker settings from the optional overrides, with the defaults above. */
export function jobLockSettings(options: { lockDurationMs?: number; stalledIntervalMs?: number }): {
  lockDuration: number;
  stalledInterval: number;
} {
  return {
    lockDuration: options.lockDurationMs ?? DEFAULT_LOCK_DURATION_MS,
    stalledInterval: options.stalledIntervalMs ?? DEFAULT_STALLED_INTERVAL_MS,
  };
}
