import { FlotillaError } from '@flotilla/protocol';

/** An update or aggregate: its tensors in a fixed order (e.g. sorted tensor names), flattened. */
export type TensorList = readonly Float32Array[];

function checkSameLayout(a: TensorList, b: TensorList): void {
  if (a.length !== b.length || a.some((t, k) => t.length !== b[k]?.length)) {
    throw new FlotillaError(
      'SHAPE_MISMATCH',
      'updates and aggregate must have the same tensors with the same sizes',
    );
  }
}

/** L2 norm over all tensors (float64 accumulation). */
export function l2Norm(tensors: TensorList): number {
  let sum = 0;
  for (const t of tensors) for (let i = 0; i < t.length; i++) sum += (t[i] ?? 0) ** 2;
  return Math.sqrt(sum);
}

/** Cosine similarity over all tensors (float64 accumulation); 0 when either side is all zeros. */
export function cosineSimilarity(a: TensorList, b: TensorList): number {
  checkSameLayout(a, b);
  let dot = 0;
  let aa = 0;
  let bb = 0;
  a.forEach((ta, k) => {
    const tb = b[k] ?? ta;
    for (let i = 0; i < ta.length; i++) {
      const x = ta[i] ?? 0;
      const y = tb[i] ?? 0;
      dot += x * y;
      aa += x * x;
      bb += y * y;
    }
  });
  if (aa === 0 || bb === 0) return 0;
  return Math.max(-1, Math.min(1, dot / Math.sqrt(aa * bb)));
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
  const weightOf = (i: number): number => weights?.[i] ?? 1;
  const total = first.map((t) => new Float64Array(t.length));
  updates.forEach((u, i) => {
    const w = weightOf(i);
    u.forEach((t, k) => {
      const acc = total[k];
      if (acc !== undefined) for (let j = 0; j < t.length; j++) acc[j] = (acc[j] ?? 0) + w * (t[j] ?? 0);
    });
  });
  return updates.map((u, i) => {
    const w = weightOf(i);
    // The others' sum is total − w·u; its scale does not matter for a cosine.
    const others = total.map((acc, k) => {
      const t = u[k] ?? new Float32Array(acc.length);
      return Float32Array.from(acc, (value, j) => value - w * (t[j] ?? 0));
    });
    return cosineSimilarity(u, others);
  });
}
