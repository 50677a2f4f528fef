/**
 * How long a test waits for something that takes milliseconds on an idle machine (a round to
 * open, an ack, a plan, a socket to close), in ms. A hang detector: a passing test never waits
 * for it, since every wait returns as soon as its condition holds. It is generous because
 * `npm test` must also pass on a loaded 2-core machine (beside two CPU-bound processes), where
 * the same steps take seconds. Timings a test asserts (e.g. "closed within 1 s") are not waits
 * and keep their own bounds.
 */
export const PATIENCE_MS = 30_000;

/**
 * A reporting deadline that a test waits out to see what happens at it, in ms: long enough for a
 * few devices to report after the plan on a loaded 2-core machine, short enough that waiting it
 * out costs the suite little. Rounds that close once every device answered need no such wait:
 * give them a deadline that only bounds a failure.
 */
export const WAITED_DEADLINE_MS = 4_000;
