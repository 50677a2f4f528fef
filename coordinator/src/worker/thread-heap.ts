// The young generation of the math threads. Their garbage is short-lived: typed-array views of
// each block of a shard's updates, boxed numbers of loops that run too few times to be optimized
// (about 18 MB per shard of 100 updates of 100,000 values, sampled with V8's heap profiler). V8
// starts a thread's semi-space at 1 MB and grows it only when objects survive, which this garbage
// never does, so each thread scavenged about 45 times (100–160 ms) per 1,000-update round; with
// 16 MB, 2–5 times. V8 sizes the young generation when it creates an isolate, and a Worker takes
// no V8 flags in its execArgv, so the size is a process-wide flag set before the threads start.
import { setFlagsFromString } from 'node:v8';

/** Semi-space of threads started from now on, in MB: 16 holds a shard's garbage between scavenges. */
export const MATH_THREAD_SEMI_SPACE_MB = 16;

let reserved = 0;

/** Makes threads started after this call begin with a `megabytes` semi-space (never shrinks it). */
export function reserveThreadYoungGeneration(megabytes = MATH_THREAD_SEMI_SPACE_MB): void {
  if (!Number.isInteger(megabytes) || megabytes <= reserved) return;
  setFlagsFromString(`--min-semi-space-size=${megabytes}`);
  reserved = megabytes;
}
