import { FlotillaError } from '@flotilla/protocol';

/** An update or aggregate: its tensors in a fixed order (e.g. sorted tensor names), flattened. */
export type TensorList = readonly Float32Array[];

function checkSameLayout(
  a: ReadonlyArray<{ length: number }>,
  b: ReadonlyArray<{ length: number }>,
  what = 'updates and aggregate',
): void {
  if (a.length !== b.length || a.some((t, k) => t.length !== b[k]?.length))
    throw new FlotillaError('SHAPE_MISMATCH', `${what} must have the same tensors with the same sizes`);
}

/** L2 norm over all tensors (float64 accumulation). */
export function l2Norm(tensors: TensorList): number {
  let sum = 0;
  for (const t of tensors) for (let i = 0; i < t.length; i++) sum += (t[i] ?? 0) ** 2;
  return Math.sqrt(sum);
}

/** dot / (|a|·|b|) clamped to [-1, 1] (rounding can step past it); 0 when either side is all zeros. */
function cosineFromSums(dot: number, aa: number, bb: number): number {
  if (aa === 0 || bb === 0) return 0;
  return Math.max(-1, Math.min(1, dot / Math.sqrt(aa * bb)));
}

/** Cosine similarity over all tensors (float64 accumulation); 0 when either side is all zeros. */
export function cosineSimilarity(a: TensorList, b: TensorList): number {
  checkSameLayout(a, b);
  // Plain loops: a callback that updated these sums would keep them in a heap context (10x slower).
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let k = 0; k < a.length; k++) {
    const ta = a[k] ?? new Float32Array(0);
    const tb = b[k] ?? ta;
    for (let i = 0; i < ta.length; i++) {
      const x = ta[i] ?? 0;
      const y = tb[i] ?? 0;
      dot += x * y;
      aa += x * x;
      bb += y * y;
    }
  }
  return cosineFromSums(dot, aa, bb);
}

/** Σ w_k·u_k per tensor in float64: what each leave-one-out mean is taken from. */
export function weightedTotal(updates: readonly TensorList[], weights?: readonly number[]): Float64Array[] {
  const first = updates[0] ?? [];
  const total = first.map((t) => new Float64Array(t.length));
  updates.forEach((u, i) => {
    const w = weights?.[i] ?? 1;
    u.forEach((t, k) => {
      const acc = total[k];
      if (acc !== undefined) for (let j = 0; j < t.length; j++) acc[j] = (acc[j] ?? 0) + w * (t[j] ?? 0);
    });
  });
  return total;
}

/**
 * Cosine of one update (weight `weight`) to the others, given `total` = Σ w_k·u_k over every
 * update, including this one: the others' sum is total − w·u, and its scale does not matter for
 * a cosine. Shard jobs call this with a total summed by other workers.
 */
export function leaveOneOutCosine(
  update: TensorList,
  total: readonly Float64Array[],
  weight: number,
): number {
  checkSameLayout(update, total, 'the update and the round total');
  // One pass, no copy of the others' sum: this runs once per update over the whole model.
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let k = 0; k < update.length; k++) {
    const t = update[k] ?? new Float32Array(0);
    const acc = total[k] ?? new Float64Array(t.length);
    for (let i = 0; i < t.length; i++) {
      const x = t[i] ?? 0;
      const y = (acc[i] ?? 0) - weight * x;
      dot += x * y;
      aa += x * x;
      bb += y * y;
    }
  }
  return cosineFromSums(dot, aa, bb);
}

/**
 * Cosine of each update to the (weighted) mean of the OTHER updates. With few devices, a
 * sign-flipped update pulls the aggregate towards itself, so its cosine to the aggregate
 * understates the disagreement; against the mean of the others it does not. With one update
 * there are no others: the result is `[null]`.
 * @param weights one per update (e.g. example counts), >= 0; default equal.
 */
export function leaveOneOutCosines(
  updates: readonly TensorList[],
  weights?: readonly number[],
): Array<number | null> {
  const first = updates[0];
  if (first === undefined) return [];
  if (updates.length === 1) return [null];
  if (weights !== undefined && (weights.length !== updates.length || weights.some((w) => !(w >= 0)))) {
    throw new FlotillaError(
      'BAD_REQUEST',
      'leave-one-out weights must be one non-negative number per update',
    );
  }
  for (const u of updates) checkSameLayout(u, first);
  const total = weightedTotal(updates, weights);
  return updates.map((u, i) => leaveOneOutCosine(u, total, weights?.[i] ?? 1));
}

/** An update's cosines, as the audit screens them. */
export interface UpdateSimilarity {
  /** Cosine to the candidate aggregate. */
  cosine: number;
  /** Cosine to the weighted mean of the other updates; null with a single update. */
  leaveOneOutCosine: number | null;
}

/** {@link UpdateSimilarity} of every update, from the updates themselves. */
export function updateSimilarities(
  updates: readonly TensorList[],
  aggregate: TensorList,
  weights?: readonly number[],
): UpdateSimilarity[] {
  const loo = leaveOneOutCosines(updates, weights);
  return updates.map((u, i) => ({
    cosine: cosineSimilarity(u, aggregate),
    leaveOneOutCosine: loo[i] ?? null,
  }));
}
