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
import type { TensorList } from './cosine.js';

/**
 * Median of a sorted column with its element at `removed` left out: the remaining n − 1 values
 * are `sorted[k]` for k < removed and `sorted[k + 1]` after; their middle (or the mean of the two
 * middle values) is read off directly, so no column is sorted twice.
 */
export function medianWithout(sorted: Float64Array, removed: number): number {
  const m = sorted.length - 1;
  const value = (k: number): number => f64At(sorted, k < removed ? k : k + 1);
  const mid = m >> 1;
  return m % 2 === 1 ? value(mid) : (value(mid - 1) + value(mid)) / 2;
}

/**
 * For each update, the cosine (float64, over all tensors) to the coordinate-wise median of the
 * other updates; null with a single update (there are no others), 0 when either side is all zeros.
 * One sort per coordinate: O(n log n · d) time, O(n) extra memory besides the column.
 */
export function othersMedianCosines(updates: readonly TensorList[]): Array<number | null> {
  const n = updates.length;
  if (n < 2) return updates.map(() => null);
  const first = at(updates, 0);
  const dot = new Float64Array(n);
  const selfSquares = new Float64Array(n);
  const referenceSquares = new Float64Array(n);
  const order = Array.from({ length: n }, (_, i) => i);
  const column = new Float64Array(n);
  const sorted = new Float64Array(n);
  for (let k = 0; k < first.length; k++) {
    const length = at(first, k).length;
    const tensors = updates.map((u) => {
      const t = u[k];
      if (u.length !== first.length || t?.length !== length)
        throw new FlotillaError('SHAPE_MISMATCH', 'updates must have the same tensors with the same sizes');
      return t;
    });
    for (let j = 0; j < length; j++) {
      for (let i = 0; i < n; i++) column[i] = f32At(at(tensors, i), j);
      // Equal values are interchangeable, so any order among ties gives the same medians.
      order.sort((a, b) => f64At(column, a) - f64At(column, b));
      for (let r = 0; r < n; r++) sorted[r] = f64At(column, at(order, r));
      for (let r = 0; r < n; r++) {
        const i = at(order, r);
        const x = f64At(column, i);
        const reference = medianWithout(sorted, r);
        dot[i] = f64At(dot, i) + x * reference;
        selfSquares[i] = f64At(selfSquares, i) + x * x;
        referenceSquares[i] = f64At(referenceSquares, i) + reference * reference;
      }
    }
  }
  return Array.from({ length: n }, (_, i) => {
    const aa = f64At(selfSquares, i);
    const bb = f64At(referenceSquares, i);
    if (aa === 0 || bb === 0) return 0;
    return Math.max(-1, Math.min(1, f64At(dot, i) / Math.sqrt(aa * bb)));
  });
}
