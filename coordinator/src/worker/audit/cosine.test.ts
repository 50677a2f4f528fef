import { describe, expect, it } from 'vitest';
import { createSeededRng } from '../privacy/random.js';
import { squaredDistance, squaredDistances } from '../strategies/checks.js';
import { cosineSimilarity, l2Norm, nearestDistances, normAndCosine, normsAndCosinesTo } from './cosine.js';

const t = (...values: number[]): Float32Array => Float32Array.from(values);

/** Each update's relative distance to its nearest other, every pair summed by the definition. */
const definitionNearest = (updates: readonly Float32Array[]): number[] =>
  updates.map((u, i) =>
    Math.min(
      ...updates
        .filter((_, j) => j !== i)
        .map((v) => Math.sqrt(squaredDistance(u, v)) / Math.max(l2Norm([u]), l2Norm([v]))),
    ),
  );

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

  it("takes every update's norm and cosine to one reference four at a time, bit for bit as one at a time", () => {
    const rng = createSeededRng('norms-and-cosines');
    for (const scale of [1e-42, 1, 1e37]) {
      const draw = (length: number) => Float32Array.from({ length }, () => scale * rng.normal());
      const reference = [draw(701), draw(3)];
      // 1 to 9 updates: whole groups of four and every size of a short last group; an all-zero
      // update (cosine 0) and a NaN among them.
      for (let n = 1; n <= 9; n++) {
        const updates = Array.from({ length: n }, () => [draw(701), draw(3)]);
        if (n >= 3) updates[1] = [new Float32Array(701), new Float32Array(3)];
        if (n >= 6) updates[5]?.[0]?.fill(Number.NaN, 100, 101);
        expect(normsAndCosinesTo(updates, reference)).toEqual(
          updates.map((u) => normAndCosine(u, reference)),
        );
      }
    }
    expect(normsAndCosinesTo([], [t(1)])).toEqual([]);
    expect(() => normsAndCosinesTo([[t(1, 0)], [t(1)]], [t(1, 0)])).toThrow(/same tensors/);
  });

  it('sums the squared distances of four pairs at a time, bit for bit as one at a time', () => {
    const rng = createSeededRng('distances-of-pairs');
    const draw = () => Float32Array.from({ length: 1001 }, () => rng.normal());
    const vectors = Array.from({ length: 6 }, draw);
    // A pair of equal vectors among them (distance 0).
    vectors[5] = vectors[0]?.slice() ?? draw();
    const all = vectors.flatMap((a, i) => vectors.slice(i + 1).map((b) => [a, b] as const));
    for (let n = 0; n <= 9; n++) {
      const pairs = all.slice(n, 2 * n);
      expect(squaredDistances(pairs)).toEqual(pairs.map(([a, b]) => squaredDistance(a, b)));
    }
    expect(squaredDistances([[vectors[0] ?? draw(), vectors[5] ?? draw()]])).toEqual([0]);
    expect(() => squaredDistances([[draw(), draw().subarray(1)]])).toThrow(/same length/);
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
    const definition = definitionNearest(updates);
    expect(nearestDistances(updates.map((u) => [u]))).toEqual(definition);
    // Split into two tensors, the same vectors give the same distances.
    const split = updates.map((u) => [u.subarray(0, 1000), u.subarray(1000)]);
    expect(nearestDistances(split)).toEqual(definition);
  });

  it("gives the definition's nearest distances when a large common part leaves the f32 bounds full of near-ties", () => {
    const rng = createSeededRng('common-part');
    const common = Float32Array.from({ length: 3000 }, () => rng.normal());
    // Every pair's distance is ~10⁻³ of the norms: inside the f32 bounds' width, so the f64 matrix is taken.
    const updates = Array.from({ length: 16 }, () =>
      Float32Array.from(common, (x) => x + 1e-3 * rng.normal()),
    );
    const definition = definitionNearest(updates);
    expect(nearestDistances(updates.map((u) => [u]))).toEqual(definition);
  });
});
