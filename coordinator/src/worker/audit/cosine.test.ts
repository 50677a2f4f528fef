import { describe, expect, it } from 'vitest';
import { createSeededRng } from '../privacy/random.js';
import { squaredDistance } from '../strategies/checks.js';
import { cosineSimilarity, l2Norm, nearestDistances, normAndCosine } from './cosine.js';

const t = (...values: number[]): Float32Array => Float32Array.from(values);

describe('cosine', () => {
  it('spans tensors', () => {
    expect(l2Norm([t(3), t(4)])).toBe(5);
    expect(cosineSimilarity([t(1, 0), t(0)], [t(1, 0), t(0)])).toBeCloseTo(1, 15);
    expect(cosineSimilarity([t(1, 0), t(0)], [t(0, 1), t(0)])).toBe(0);
    expect(cosineSimilarity([t(1, 1)], [t(-1, -1)])).toBeCloseTo(-1, 15);
    expect(cosineSimilarity([t(0, 0)], [t(1, 1)])).toBe(0);
    expect(() => cosineSimilarity([t(1, 0)], [t(1)])).toThrow(/same tensors/);
  });

  it('takes the norm and the cosine in one pass, bit for bit as l2Norm and cosineSimilarity', () => {
    const rng = createSeededRng('norm-and-cosine');
    // From f32 subnormals to values near the f32 maximum, so every square's exponent range shows.
    for (const scale of [1e-42, 1e-20, 1, 1e15, 1e37]) {
      const draw = (length: number) => Float32Array.from({ length }, () => scale * rng.normal());
      const a = [draw(700), draw(3)];
      const b = [draw(700), draw(3)];
      expect(normAndCosine(a, b)).toEqual({ norm: l2Norm(a), cosine: cosineSimilarity(a, b) });
    }
    expect(() => normAndCosine([t(1, 0)], [t(1)])).toThrow(/same tensors/);
  });

  it('gives each update its relative distance to the closest other one', () => {
    const a = [t(3, 0)];
    const b = [t(0, 4)];
    const c = [t(3, 0.3)]; // ‖a − c‖ = 0.3, max norm √9.09
    const copy = [t(0, 4)];
    const nearest = nearestDistances([a, b, c, copy]);
    expect(nearest[0]).toBeCloseTo(0.3 / Math.sqrt(9.09), 6);
    expect(nearest[1]).toBe(0);
    expect(nearest[2]).toBeCloseTo(0.3 / Math.sqrt(9.09), 6);
    expect(nearest[3]).toBe(0);
    // A copy scaled by 1.05 is not a duplicate: distance 0.05·‖u‖ / (1.05·‖u‖).
    expect(nearestDistances([a, [t(3.15, 0)]])[0]).toBeCloseTo(0.05 / 1.05, 6);
    expect(nearestDistances([a])).toEqual([null]);
    expect(nearestDistances([])).toEqual([]);
  });

  it('sums the nearest pair by the definition, also among near-copies', () => {
    const rng = createSeededRng('nearest');
    const base = Float32Array.from({ length: 3000 }, () => rng.normal());
    // Near-copies (1e-6 apart) where the Gram expansion ‖u‖² + ‖v‖² − 2⟨u, v⟩ cancels, and strangers.
    const updates = Array.from({ length: 12 }, (_, i) =>
      i < 6
        ? Float32Array.from(base, (x) => x + 1e-6 * rng.normal())
        : Float32Array.from({ length: 3000 }, () => rng.normal()),
    );
    const definition = updates.map((u, i) =>
      Math.min(
        ...updates
          .filter((_, j) => j !== i)
          .map((v) => Math.sqrt(squaredDistance(u, v)) / Math.max(l2Norm([u]), l2Norm([v]))),
      ),
    );
    expect(nearestDistances(updates.map((u) => [u]))).toEqual(definition);
    // Split into two tensors, the same vectors give the same distances.
    const split = updates.map((u) => [u.subarray(0, 1000), u.subarray(1000)]);
    expect(nearestDistances(split)).toEqual(definition);
  });
});
