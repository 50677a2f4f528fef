/** Synthetic rounds for the audit tests: honest updates are small random deltas around one direction. */
import { at, f32At } from '@flotilla/protocol';
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

/** {@link honestRound} with the updates at `indices` scaled by `factor` (the outliers to find). */
export function roundWithOutliers(
  count: number,
  seed: string,
  outliers: { indices: readonly number[]; factor: number },
): TensorList[] {
  const updates = honestRound(count, seed);
  for (const i of outliers.indices) updates[i] = scaled(updates[i] ?? [], outliers.factor);
  return updates;
}

/** Unweighted mean (what FedAvg with equal weights would give). */
export function meanOf(updates: readonly TensorList[]): TensorList {
  const first = updates[0] ?? [];
  return first.map((t, k) => {
    const out = new Float32Array(t.length);
    for (const u of updates) {
      const tk = u[k] ?? t;
      for (let i = 0; i < out.length; i++) out[i] = f32At(out, i) + f32At(tk, i) / updates.length;
    }
    return out;
  });
}

/**
 * Non-IID honest updates: device i holds mostly class i % classes; its update is a shared
 * component plus its class's own direction (classes pull the weights their own way), plus noise,
 * its length within ±20% of the others'.
 */
export function nonIidRound(count: number, seed: string, classes = 10, dim = 256): TensorList[] {
  const rng = createSeededRng(seed);
  const shared = Float32Array.from({ length: dim }, () => rng.normal());
  const own = Array.from({ length: classes }, () => Float32Array.from({ length: dim }, () => rng.normal()));
  return Array.from({ length: count }, (_, i) => {
    const cls = own[i % classes] ?? shared;
    const scale = 0.8 + 0.4 * rng.uniform();
    return [Float32Array.from(shared, (v, j) => scale * (0.4 * v + f32At(cls, j) + 0.3 * rng.normal()))];
  });
}

/** Per-coordinate mean and standard deviation (n − 1) of updates, tensor by tensor. */
export function meanAndStd(updates: readonly TensorList[]): { mean: TensorList; std: TensorList } {
  const first = updates[0] ?? [];
  const n = updates.length;
  const mean = first.map((t) => new Float32Array(t.length));
  const std = first.map((t) => new Float32Array(t.length));
  first.forEach((t, k) => {
    for (let j = 0; j < t.length; j++) {
      let sum = 0;
      for (const u of updates) sum += f32At(at(u, k), j);
      const m = sum / n;
      let ss = 0;
      for (const u of updates) ss += (f32At(at(u, k), j) - m) ** 2;
      (mean[k] ?? t)[j] = m;
      (std[k] ?? t)[j] = Math.sqrt(ss / Math.max(1, n - 1));
    }
  });
  return { mean, std };
}
