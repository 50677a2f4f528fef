// Each update against the consensus of the OTHER updates of its round: the cosine to the
// coordinate-wise median of everyone but itself. The round's median includes the update itself,
// and when updates are clipped to one norm and mostly device-specific noise that self-inclusion
// is most of the cosine: in a built-in attack run at C = 1 (attack-krum, rounds 16–17, 6 updates)
// honest updates scored +0.33 to +0.47 against the round's median but −0.12 to +0.04 against the
// others', and sign-flipped ones +0.12 to +0.24 against −0.19 to −0.25. Whether an update opposes
// the others (a negative cosine) is the criterion of FLTrust (Cao et al., NDSS 2021, "FLTrust:
// Byzantine-robust Federated Learning via Trust Bootstrapping"), whose trust score ReLU(cos)
// gives no weight to an update pointing against the reference; here the reference is the others'
// median rather than a server update, so no root dataset is needed.
import { FlotillaError, at, f32At, f64At } from '@flotilla/protocol';
import { forEachSortedColumnBlock, type ColumnOptions } from '../strategies/coordinate-wise.js';
import type { TensorList } from './cosine.js';
import { LeaveOneOutSums } from './leave-one-out-kernel.js';

/**
 * Median of a sorted column with its element at `removed` left out: the remaining n − 1 values
 * are `sorted[k]` for k < removed and `sorted[k + 1]` after; their middle (or the mean of the two
 * middle values) is read off directly, so no column is sorted twice.
 */
export function medianWithout(sorted: Float64Array, removed: number): number {
  const m = sorted.length - 1;
  const mid = m >> 1;
  // Position k of the others is sorted[k] below the removed one and sorted[k + 1] from it on.
  const upper = f64At(sorted, mid < removed ? mid : mid + 1);
  if (m % 2 === 1) return upper;
  const lower = f64At(sorted, mid - 1 < removed ? mid - 1 : mid);
  return (lower + upper) / 2;
}

/**
 * For each update, the cosine (float64, over all tensors) to the coordinate-wise median of the
 * other updates; null with a single update (there are no others), 0 when either side is all zeros.
 *
 * Removing one value x from a sorted column leaves one of only three medians, and which one depends
 * on x alone (removing any of several equal values leaves the same multiset): with `mid` the middle
 * of the n − 1 others, x above the column's value at `mid` leaves `medianWithout(sorted, n − 1)`,
 * x below it `medianWithout(sorted, 0)`, x equal to it `medianWithout(sorted, mid)`. So each column
 * needs only its sorted positions mid − 1 … mid + 1 (a pruned sorting network, column-sort.ts),
 * and the sums are added per update in coordinate order, as a fresh median per update would be.
 */
export function othersMedianCosines(
  updates: readonly TensorList[],
  options: ColumnOptions = {},
): Array<number | null> {
  return othersMedianScreen(updates, options).cosines;
}

export interface OthersMedianScreen {
  cosines: Array<number | null>;
  /** Each update's Σ x² (null with a single update). */
  squaredNorms: Float64Array | null;
  /**
   * With `withMedian`, the coordinate-wise median of all the updates, per tensor: the sorted
   * positions read for the others' medians hold it, and it is `columnMedians`' value bit for bit
   * (`sortedMedian` rounded to f32). Null otherwise, and with a single update.
   */
  median: Float32Array[] | null;
}

/**
 * {@link othersMedianCosines}, and each update's Σ x² that the cosine summed anyway: `l2Norm`'s
 * sum bit for bit (the same terms in the same order, each square of an f32 exact in float64), so a
 * caller needs no separate norm pass. Null squares with a single update (nothing is summed).
 */
export function othersMedianScreen(
  updates: readonly TensorList[],
  options: ColumnOptions & { withMedian?: boolean } = {},
): OthersMedianScreen {
  const n = updates.length;
  if (n < 2) return { cosines: updates.map(() => null), squaredNorms: null, median: null };
  const first = at(updates, 0);
  const dot = new Float64Array(n);
  const selfSquares = new Float64Array(n);
  const referenceSquares = new Float64Array(n);
  const mid = (n - 1) >> 1;
  const positions = { from: (n - 1) % 2 === 0 ? mid - 1 : mid, to: mid + 2 };
  const sorted = new Float64Array(n);
  // Per column c of a block: the column's value at `mid`, and at 3c + 0, 1, 2 the medians that
  // removing a value equal to it, below it and above it leaves.
  let pivot: Float64Array = new Float64Array(0);
  let medians: Float64Array = pivot;
  // The whole column's median (sortedMedian): its middle value, or the mean of its two middle ones.
  const half = n >> 1;
  const median = options.withMedian === true ? first.map((t) => new Float32Array(t.length)) : null;
  // The loop below in WebAssembly (leave-one-out-kernel.ts), but with the scalar column sort.
  const kernel = options.kernel === 'scalar' ? null : LeaveOneOutSums.create(n);
  for (let k = 0; k < first.length; k++) {
    const length = at(first, k).length;
    const tensors = updates.map((u) => {
      const t = u[k];
      if (u.length !== first.length || t?.length !== length)
        throw new FlotillaError('SHAPE_MISMATCH', 'updates must have the same tensors with the same sizes');
      return t;
    });
    const columnMedian = median?.[k] ?? null;
    forEachSortedColumnBlock(
      tensors,
      length,
      ({ start, count, value }) => {
        if (kernel) ({ pivots: pivot, medians } = kernel.block(count));
        else if (pivot.length < count) {
          pivot = new Float64Array(count);
          medians = new Float64Array(3 * count);
        }
        for (let c = 0; c < count; c++) {
          for (let r = positions.from; r < positions.to; r++) sorted[r] = value(r, c);
          pivot[c] = f64At(sorted, mid);
          medians[3 * c] = medianWithout(sorted, mid);
          medians[3 * c + 1] = medianWithout(sorted, 0);
          medians[3 * c + 2] = medianWithout(sorted, n - 1);
          if (columnMedian !== null) {
            const upper = f64At(sorted, half);
            columnMedian[start + c] = n % 2 === 1 ? upper : (f64At(sorted, half - 1) + upper) / 2;
          }
        }
        // Update by update, each reading its slice of the block in one run.
        if (kernel) {
          tensors.forEach((values, i) => kernel.add(i, values, start, count));
          return;
        }
        for (let i = 0; i < n; i++) {
          const values = at(tensors, i);
          let d = f64At(dot, i);
          let xx = f64At(selfSquares, i);
          let rr = f64At(referenceSquares, i);
          for (let c = 0; c < count; c++) {
            const x = f32At(values, start + c);
            const p = f64At(pivot, c);
            // An index computed from the comparisons rather than a branch on them: which of the
            // three applies is a coin flip per value, and mispredicted branches were most of the time.
            const reference = f64At(medians, 3 * c + Number(x > p) * 2 + Number(x < p));
            d += x * reference;
            xx += x * x;
            rr += reference * reference;
          }
          dot[i] = d;
          selfSquares[i] = xx;
          referenceSquares[i] = rr;
        }
      },
      { ...options, ...positions },
    );
  }
  if (kernel)
    for (let i = 0; i < n; i++) {
      const sums = kernel.sums(i);
      dot[i] = sums.dot;
      selfSquares[i] = sums.self;
      referenceSquares[i] = sums.reference;
    }
  const cosines = Array.from({ length: n }, (_, i) => {
    const aa = f64At(selfSquares, i);
    const bb = f64At(referenceSquares, i);
    if (aa === 0 || bb === 0) return 0;
    return Math.max(-1, Math.min(1, f64At(dot, i) / Math.sqrt(aa * bb)));
  });
  return { cosines, squaredNorms: selfSquares, median };
}
