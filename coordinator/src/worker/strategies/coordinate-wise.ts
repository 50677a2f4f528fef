// Coordinate-wise reductions of sorted columns: median, trimmed mean, Bulyan's second stage and the
// audit's reference. Each is defined on the column of one coordinate's values sorted ascending as
// `Float64Array.prototype.sort` sorts (NaN last, -0 before +0), reduced in float64 and rounded once
// to f32. The SIMD path (column-sort.ts) gives the same sorted columns and performs the same float64
// operations in the same order, so its results are bit for bit those of the definition; the
// 'scalar' path is the definition itself, for runtimes without WebAssembly SIMD.
import { at, f32At, f64At, i32At } from '@flotilla/protocol';
import { forEachSortedBlock, type SortedBlock } from './column-sort.js';
import { simdAvailable } from './simd-kernel.js';

export interface ColumnOptions {
  /**
   * `'auto'` (default) uses the WebAssembly SIMD kernels when the runtime validates them and there
   * are at most `MAX_NETWORK_UPDATES` updates, else the scalar definition; `'simd'` always uses the
   * kernels (INTERNAL without WebAssembly SIMD); `'scalar'` always sorts each column with
   * `Float64Array.prototype.sort`.
   */
  kernel?: 'auto' | 'simd' | 'scalar';
}

/**
 * Most updates the SIMD path sorts: the network's code grows as n·log²n (n = 2,048 is ~1.3 MB of
 * WebAssembly, compiled in about 2 s); past it, each column is sorted on its own.
 */
export const MAX_NETWORK_UPDATES = 2048;

function useSimd(options: ColumnOptions, n: number): boolean {
  const kernel = options.kernel ?? 'auto';
  if (kernel === 'scalar') return false;
  return kernel === 'simd' || (simdAvailable() && n <= MAX_NETWORK_UPDATES);
}

/** A block of coordinates whose columns are sorted: `value(k, c)` is the k-th smallest of column c. */
export interface SortedColumns {
  /** First coordinate of the block. */
  start: number;
  /** Coordinates in the block. */
  count: number;
  value: (position: number, column: number) => number;
}

/** Coordinates per block of the scalar path (its sorted columns are kept side by side). */
const SCALAR_BLOCK = 256;

/**
 * Calls `visit` once per block of coordinates with their columns of values (one per update) sorted
 * ascending in float64. Only the sorted positions [from, to) (default all) are certain: the SIMD
 * path prunes its network to them. Visiting a block at a time lets a caller read each update's
 * slice of the block in one sequential run.
 */
export function forEachSortedColumnBlock(
  vectors: readonly Float32Array[],
  length: number,
  visit: (block: SortedColumns) => void,
  options: ColumnOptions & { from?: number; to?: number } = {},
): void {
  const n = vectors.length;
  if (!useSimd(options, n)) {
    const columns = new Float64Array(n * SCALAR_BLOCK);
    for (let start = 0; start < length; start += SCALAR_BLOCK) {
      const count = Math.min(SCALAR_BLOCK, length - start);
      for (let c = 0; c < count; c++) {
        const column = columns.subarray(c * n, (c + 1) * n);
        for (let k = 0; k < n; k++) column[k] = f32At(at(vectors, k), start + c);
        column.sort();
      }
      visit({ start, count, value: (k, c) => f64At(columns, c * n + k) });
    }
    return;
  }
  const reduction = { kind: 'sorted', from: options.from ?? 0, to: options.to ?? n } as const;
  forEachSortedBlock(vectors, length, reduction, (block) => {
    const { kernel, keys, stride, start, count } = block;
    kernel.floatsFromKeys(keys, keys, n * stride);
    const sorted = new Float32Array(kernel.memory.buffer, keys, (n * stride) / 4);
    const rowFloats = stride / 4;
    visit({ start, count, value: (k, c) => f32At(sorted, k * rowFloats + c) });
  });
}

/**
 * Applies `reduce` to every coordinate's column of values (one per update), sorted ascending, and
 * rounds the float64 result to f32.
 */
export function reduceSortedColumns(
  vectors: readonly Float32Array[],
  length: number,
  reduce: (sortedColumn: Float64Array) => number,
  options: ColumnOptions = {},
): Float32Array {
  const out = new Float32Array(length);
  const column = new Float64Array(vectors.length);
  forEachSortedColumnBlock(
    vectors,
    length,
    ({ start, count, value }) => {
      for (let c = 0; c < count; c++) {
        for (let k = 0; k < column.length; k++) column[k] = value(k, c);
        out[start + c] = reduce(column);
      }
    },
    options,
  );
  return out;
}

/** Median of a sorted column; the mean of the two middle values when the count is even (numpy). */
export function sortedMedian(sorted: Float64Array): number {
  const n = sorted.length;
  const mid = n >> 1;
  const upper = f64At(sorted, mid);
  return n % 2 === 1 ? upper : (f64At(sorted, mid - 1) + upper) / 2;
}

/** Unweighted mean of `sorted[from..to)`, added in that order. */
export function rangeMean(sorted: Float64Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += f64At(sorted, i);
  return sum / (to - from);
}

/**
 * Mean of the `count` values of a sorted column closest to its median. They form a contiguous run
 * around the median, grown one side at a time; on equal distance the lower value is taken.
 */
export function meanClosestToMedian(sorted: Float64Array, count: number): number {
  const median = sortedMedian(sorted);
  let right = 0;
  while (right < sorted.length && f64At(sorted, right) < median) right++;
  let left = right - 1;
  let sum = 0;
  for (let taken = 0; taken < count; taken++) {
    const lower = left >= 0 ? median - f64At(sorted, left) : Infinity;
    const upper = right < sorted.length ? f64At(sorted, right) - median : Infinity;
    const taking = lower <= upper ? left-- : right++;
    // With infinite values (or a NaN median) two distances can both be +Inf or fail to compare,
    // and the window then runs past an end of the column. The missing value counts as 0, as in
    // the definition the SIMD lanes are held to (column-sort.test.ts). Devices cannot send such
    // values: the coordinator refuses an update whose norm is not finite.
    sum += taking >= 0 && taking < sorted.length ? f64At(sorted, taking) : 0;
  }
  return sum / count;
}

/** `sortedMedian` of every column: the coordinate-wise median. */
export function columnMedians(
  vectors: readonly Float32Array[],
  length: number,
  options: ColumnOptions = {},
): Float32Array {
  if (!useSimd(options, vectors.length)) return reduceSortedColumns(vectors, length, sortedMedian, options);
  const out = new Float32Array(length);
  const n = vectors.length;
  const row = n >> 1;
  const reduction = n % 2 === 1 ? ({ kind: 'pick', row } as const) : ({ kind: 'midpoint', row } as const);
  forEachSortedBlock(vectors, length, reduction, (block) => copyOut(block, out));
  return out;
}

/** `rangeMean(column, from, to)` of every sorted column (the trimmed mean cuts `from` per end). */
export function columnRangeMeans(
  vectors: readonly Float32Array[],
  length: number,
  range: { from: number; to: number },
  options: ColumnOptions = {},
): Float32Array {
  const { from, to } = range;
  if (!useSimd(options, vectors.length)) {
    return reduceSortedColumns(vectors, length, (sorted) => rangeMean(sorted, from, to), options);
  }
  const out = new Float32Array(length);
  forEachSortedBlock(vectors, length, { kind: 'mean', from, to }, (block) => copyOut(block, out));
  return out;
}

/** Copies a block's reduction results into `out` at the block's coordinates. */
function copyOut(block: SortedBlock, out: Float32Array): void {
  out.set(new Float32Array(block.kernel.memory.buffer, block.out, block.count), block.start);
}

/**
 * `meanClosestToMedian(column, count)` of every sorted column (Bulyan's second stage). Groups of
 * columns the vector path flags (ties at the median, non-finite values, values too spread for its
 * sum to be exact in any order, see lane-reductions.ts) are computed by the definition.
 */
export function columnClosestMeans(
  vectors: readonly Float32Array[],
  length: number,
  count: number,
  options: ColumnOptions = {},
): Float32Array {
  const n = vectors.length;
  // One value per column has no side to grow from (the vector code reads the row below the median).
  if (!useSimd(options, n) || n < 2) {
    return reduceSortedColumns(vectors, length, (sorted) => meanClosestToMedian(sorted, count), options);
  }
  const out = new Float32Array(length);
  const column = new Float64Array(n);
  forEachSortedBlock(vectors, length, { kind: 'closest', count }, (block) => {
    copyOut(block, out);
    const { buffer } = block.kernel.memory;
    const flags = new Int32Array(buffer, block.flags, block.lanes / 4);
    const keys = new Int32Array(buffer, block.keys, (n * block.stride) / 4);
    const rowInts = block.stride / 4;
    const bits = new Int32Array(1);
    const asFloat = new Float32Array(bits.buffer);
    for (let group = 0; group < flags.length; group++) {
      if (flags[group] === 0) continue;
      for (let c = 4 * group; c < Math.min(block.count, 4 * group + 4); c++) {
        for (let k = 0; k < n; k++) {
          const key = i32At(keys, k * rowInts + c);
          bits[0] = key ^ ((key >> 31) >>> 1);
          column[k] = f32At(asFloat, 0);
        }
        out[block.start + c] = meanClosestToMedian(column, count);
      }
    }
  });
  return out;
}
