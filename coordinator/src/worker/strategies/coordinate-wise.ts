/**
 * Applies `reduce` to every coordinate's column of values (one per update), sorted ascending, and
 * rounds the float64 result to f32. Used by median, trimmed mean and Bulyan's second stage.
 */
export function reduceSortedColumns(
  vectors: readonly Float32Array[],
  length: number,
  reduce: (sortedColumn: Float64Array) => number,
): Float32Array {
  const out = new Float32Array(length);
  const column = new Float64Array(vectors.length);
  for (let j = 0; j < length; j++) {
    for (let k = 0; k < vectors.length; k++) column[k] = vectors[k]?.[j] ?? 0;
    column.sort();
    out[j] = reduce(column);
  }
  return out;
}

/** Median of a sorted column; the mean of the two middle values when the count is even (numpy). */
export function sortedMedian(sorted: Float64Array): number {
  const n = sorted.length;
  const mid = n >> 1;
  const upper = sorted[mid] ?? 0;
  return n % 2 === 1 ? upper : ((sorted[mid - 1] ?? 0) + upper) / 2;
}

/** Unweighted mean of `sorted[from..to)`. */
export function rangeMean(sorted: Float64Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += sorted[i] ?? 0;
  return sum / (to - from);
}
