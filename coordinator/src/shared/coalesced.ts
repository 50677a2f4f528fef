// Runs an idempotent catch-up task (the round log's JSONL mirror, a round's close check) on behalf
// of many callers: a call while a run is in progress waits for one more run that starts after it,
// and every call made meanwhile shares that run. N callers cost at most two runs each way, never
// N, and no caller waits on more than two, however long the calls keep coming.

/** Wraps `task` (which must not throw) so that concurrent calls share runs. */
export function coalesced(task: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null;
  let next: Promise<void> | null = null;
  const request = (): Promise<void> => {
    if (running === null) {
      running = task().finally(() => {
        running = null;
      });
      return running;
    }
    // The run in progress may have read its input before this caller's change: wait for the next.
    next ??= running.then(() => {
      next = null;
      return request();
    });
    return next;
  };
  return request;
}
