import { readFileSync } from 'node:fs';
// Timing helpers shared by the bench sections. Every figure the bench prints is a ratio of two
// measurements taken side by side in one run, so the helpers interleave the contenders.

/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const hi = sorted[mid] ?? Number.NaN;
  if (sorted.length % 2 === 1) return hi;
  return ((sorted[mid - 1] ?? Number.NaN) + hi) / 2;
}

/** Nearest-rank percentile (p in [0, 100]) of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

/** Wall-clock milliseconds of one synchronous call. */
export function timeMs(run: () => void): number {
  const start = performance.now();
  run();
  return performance.now() - start;
}

export interface InterleavedOptions {
  /** Untimed rounds before measuring (JIT, page faults, wasm compilation). */
  warmup: number;
  /** Timed rounds; each contender runs once per round, in the order given. */
  repeats: number;
  /** Stop adding repeats once this much wall time (ms) has passed (at least one repeat runs). */
  budgetMs: number;
}

/**
 * Runs every contender once per round, round after round, so they share the machine's load;
 * returns each contender's median time in ms and the number of timed rounds.
 */
export function interleaved<K extends string>(
  contenders: Record<K, () => void>,
  options: InterleavedOptions,
): { medianMs: Record<K, number>; samplesMs: Record<K, number[]>; rounds: number } {
  const names = Object.keys(contenders) as K[];
  for (let w = 0; w < options.warmup; w++) for (const name of names) contenders[name]();
  const samples = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  const start = performance.now();
  let rounds = 0;
  while (rounds < options.repeats && (rounds === 0 || performance.now() - start < options.budgetMs)) {
    for (const name of names) samples[name].push(timeMs(contenders[name]));
    rounds += 1;
  }
  const medianMs = Object.fromEntries(names.map((n) => [n, median(samples[n])])) as Record<K, number>;
  return { medianMs, samplesMs: samples, rounds };
}

/** Fills `out` with reproducible values in [-1, 1) (xorshift32: cheap and not all equal). */
export function fillPseudoRandom(out: Float32Array, seed: number): Float32Array {
  let state = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < out.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[i] = (state >>> 0) / 2_147_483_648 - 1;
  }
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * CPU time (user + system, ms, all threads) a process has used so far, from /proc; null where
 * there is no /proc (CPU time, unlike wall time, does not grow when other work shares the cores).
 */
export function processCpuMs(pid: number): number | null {
  return cpuMsFromStat(`/proc/${pid}/stat`);
}

/** The same for a process's main thread alone (its event loop: GC helpers and I/O threads left out). */
function mainThreadCpuMs(pid: number): number | null {
  return cpuMsFromStat(`/proc/${pid}/task/${pid}/stat`);
}

/** A process's CPU so far, ms: all threads, and its main thread; null where there is no /proc. */
export interface CpuSnapshot {
  all: number | null;
  main: number | null;
}

export function cpuSnapshot(pid: number): CpuSnapshot {
  return { all: processCpuMs(pid), main: mainThreadCpuMs(pid) };
}

/** CPU ms per item that `pid` spent since `before`; null where unmeasured or with no items. */
export function cpuPerItemSince(pid: number, before: CpuSnapshot, items: number): CpuSnapshot {
  const now = cpuSnapshot(pid);
  const per = (from: number | null, to: number | null) =>
    from === null || to === null || items === 0 ? null : (to - from) / items;
  return { all: per(before.all, now.all), main: per(before.main, now.main) };
}

function cpuMsFromStat(path: string): number | null {
  try {
    // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks (1/100 s).
    const fields = readFileSync(path, 'utf8').split(') ')[1]?.split(' ') ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks * 10 : null;
  } catch {
    return null;
  }
}
