import { describe, expect, it } from 'vitest';
import { cosineSimilarity, l2Norm, leaveOneOutCosines } from './cosine.js';

const t = (...values: number[]): Float32Array => Float32Array.from(values);

describe('cosine', () => {
  it('spans tensors', () => {
    expect(l2Norm([t(3), t(4)])).toBe(5);
    expect(cosineSimilarity([t(1, 0), t(0)], [t(1, 0), t(0)])).toBeCloseTo(1, 15);
    expect(cosineSimilarity([t(1, 0), t(0)], [t(0, 1), t(0)])).toBe(0);
    expect(cosineSimilarity([t(1, 1)], [t(-1, -1)])).toBeCloseTo(-1, 15);
    expect(cosineSimilarity([t(0, 0)], [t(1, 1)])).toBe(0);
  });

  it('leave-one-out sees a sign flip that the aggregate hides', () => {
    // Two devices, one flipped and larger: the mean points along the flipped one.
    const honest = [t(1, 0)];
    const flipped = [t(-2, 0.1)];
    const aggregate = [t(-0.5, 0.05)];
    expect(cosineSimilarity(flipped, aggregate)).toBeGreaterThan(0.9);
    const loo = leaveOneOutCosines([honest, flipped]);
    expect(loo[1]).toBeLessThan(-0.9);
    expect(leaveOneOutCosines([honest])).toEqual([null]);
  });

  it('weights the mean of the others', () => {
    const u = [[t(1, 0)], [t(0, 1)], [t(-1, 0)]];
    // For update 1 the others are (1,0) with weight 3 and (-1,0) with weight 1: mean along +x, orthogonal.
    const loo = leaveOneOutCosines(u, [3, 1, 1]);
    expect(loo[1]).toBeCloseTo(0, 7);
    // For update 2 the others are 3·(1,0) + (0,1): cosine with (-1,0) is -3/sqrt(10)
    expect(loo[2]).toBeCloseTo(-3 / Math.sqrt(10), 7);
  });

  it('equals the cosine to the explicitly built weighted mean of the others', () => {
    // Deterministic pseudo-random updates over two tensors of different sizes.
    let seed = 7;
    const next = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    const updates = Array.from({ length: 6 }, () => [
      Float32Array.from({ length: 5 }, next),
      Float32Array.from({ length: 3 }, next),
    ]);
    const weights = [1, 4, 2, 7, 3, 5];
    const loo = leaveOneOutCosines(updates, weights);
    updates.forEach((u, i) => {
      const others = u.map((tensor, k) =>
        Float32Array.from(tensor, (_, j) => {
          let sum = 0;
          updates.forEach((v, m) => {
            if (m !== i) sum += (weights[m] ?? 0) * (v[k]?.[j] ?? 0);
          });
          return sum;
        }),
      );
      expect(loo[i]).toBeCloseTo(cosineSimilarity(u, others), 6);
    });
  });
});
