/** Synthetic rounds for the audit tests: honest updates are small random deltas around one direction. */
import { createSeededRng } from '../privacy/random.js';
import type { TensorList } from './cosine.js';

export const TENSOR_SIZES = [24, 8] as const;

export function honestRound(count: number, seed: string): TensorList[] {
  const rng = createSeededRng(seed);
  const direction = TENSOR_SIZES.map((size) => Float32Array.from({ length: size }, () => rng.normal()));
  return Array.from({ length: count }, () =>
    direction.map((t) => Float32Array.from(t, (v) => 0.1 * v + 0.03 * rng.normal())),
  );
}

export function scaled(update: TensorList, factor: number): TensorList {
  return update.map((t) => t.map((v) => v * factor));
}

/** Unweighted mean (what FedAvg with equal weights would give). */
export function meanOf(updates: readonly TensorList[]): TensorList {
  const first = updates[0] ?? [];
  return first.map((t, k) => {
    const out = new Float32Array(t.length);
    for (const u of updates) {
      const tk = u[k] ?? t;
      for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) + (tk[i] ?? 0) / updates.length;
    }
    return out;
  });
}
