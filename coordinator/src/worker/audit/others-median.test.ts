import { describe, expect, it } from 'vitest';
import { at } from '@flotilla/protocol';
import { createSeededRng } from '../privacy/random.js';
import { cosineSimilarity, l2Norm, type TensorList } from './cosine.js';
import { medianWithout, othersMedianCosines, othersMedianScreen } from './others-median.js';
import { coordinateMedian } from './reference.js';
import { reduceSortedColumns, sortedMedian } from '../strategies/coordinate-wise.js';

const t = (...values: number[]): Float32Array => Float32Array.from(values);

describe('medianWithout', () => {
  it('is the median of the other values of a sorted column', () => {
    const even = Float64Array.of(1, 2, 3, 4);
    expect([0, 1, 2, 3].map((r) => medianWithout(even, r))).toEqual([3, 3, 2, 2]);
    const odd = Float64Array.of(1, 2, 3);
    expect([0, 1, 2].map((r) => medianWithout(odd, r))).toEqual([2.5, 2, 1.5]);
  });
});

describe('othersMedianCosines', () => {
  it('compares each update with the median of the others, not with a median it is part of', () => {
    // a = (1, 0), b = (0, 1), c = (−1, 0). Without a: median of b and c = (−0.5, 0.5), cosine
    // −0.5 / √0.5 = −1/√2. Without b: (0, 0), cosine 0. Without c: (0.5, 0.5), cosine −1/√2.
    const cosines = othersMedianCosines([[t(1, 0)], [t(0, 1)], [t(-1, 0)]]);
    expect(cosines[0]).toBeCloseTo(-Math.SQRT1_2, 12);
    expect(cosines[1]).toBe(0);
    expect(cosines[2]).toBeCloseTo(-Math.SQRT1_2, 12);
    // The round's own median, (0, 0) per coordinate of {1, 0, −1} and {0, 1, 0}, is (0, 0): it
    // would call all three orthogonal to the round.
    expect(othersMedianCosines([[t(2, 0)]])).toEqual([null]);
    expect(othersMedianCosines([])).toEqual([]);
    expect(() => othersMedianCosines([[t(1, 0)], [t(1)]])).toThrow(/same tensors/);
  });

  it('equals the definition (a median of the others taken afresh) on random rounds with ties', () => {
    const rng = createSeededRng('others-median');
    for (const n of [2, 3, 4, 7, 10]) {
      // Values on a coarse grid, so columns hold ties; two tensors, so sums span them.
      const updates: TensorList[] = Array.from({ length: n }, () => [
        Float32Array.from({ length: 9 }, () => Math.round(4 * rng.normal()) / 4),
        Float32Array.from({ length: 5 }, () => Math.round(4 * rng.normal()) / 4),
      ]);
      const fast = othersMedianCosines(updates);
      updates.forEach((u, i) => {
        const others = updates.filter((_, j) => j !== i);
        expect(fast[i], `n ${n}, update ${i}`).toBeCloseTo(cosineSimilarity(u, coordinateMedian(others)), 6);
      });
    }
  });

  it("hands back each update's squared norm, l2Norm's bit for bit, over several tensors", () => {
    const rng = createSeededRng('others-median-norms');
    for (const n of [2, 5, 33]) {
      const updates: TensorList[] = Array.from({ length: n }, () => [
        Float32Array.from({ length: 700 }, () => rng.normal() * 1e-3),
        Float32Array.from({ length: 61 }, () => rng.normal() * 40),
      ]);
      const { cosines, squaredNorms } = othersMedianScreen(updates);
      expect(cosines).toEqual(othersMedianCosines(updates));
      expect(Array.from(squaredNorms ?? [], Math.sqrt)).toEqual(updates.map((u) => l2Norm(u)));
    }
    expect(othersMedianScreen([[new Float32Array(3)]]).squaredNorms).toBeNull();
  });

  it("hands back the whole columns' median, the median strategy's bit for bit, with odd and even counts", () => {
    const rng = createSeededRng('others-median-median');
    for (const n of [2, 3, 8, 33, 100]) {
      const updates: TensorList[] = Array.from({ length: n }, () => [
        // Rounded to a few values so columns hold ties, and a wide spread so midpoints round.
        Float32Array.from({ length: 517 }, () => Math.round(rng.normal() * 4) / 4),
        Float32Array.from({ length: 70 }, () => rng.normal() * 10 ** Math.floor(rng.uniform() * 12 - 6)),
      ]);
      const { median, cosines } = othersMedianScreen(updates, { withMedian: true });
      const definition = updates[0]?.map((_, k) =>
        reduceSortedColumns(
          updates.map((u) => at(u, k)),
          at(at(updates, 0), k).length,
          sortedMedian,
          { kernel: 'scalar' },
        ),
      );
      expect(median).toEqual(definition);
      expect(median).toEqual(coordinateMedian(updates));
      expect(cosines).toEqual(othersMedianCosines(updates));
    }
    expect(othersMedianScreen([[new Float32Array(3)]], { withMedian: true }).median).toBeNull();
    expect(othersMedianScreen([[new Float32Array(3)], [new Float32Array(3)]]).median).toBeNull();
  });

  it('equals, bit for bit, the float64 definition summed in coordinate order', () => {
    // The definition without shortcuts: each coordinate's median of the others from a fresh sort,
    // kept in float64, and the cosine's three sums added coordinate by coordinate.
    const definition = (updates: readonly TensorList[], i: number): number => {
      let dot = 0;
      let xx = 0;
      let rr = 0;
      at(updates, i).forEach((tensor, k) => {
        tensor.forEach((x, c) => {
          const column = Float64Array.from(
            updates.filter((_, j) => j !== i),
            (u) => at(at(u, k), c),
          ).sort();
          const m = column.length >> 1;
          const median = column.length % 2 === 1 ? at(column, m) : (at(column, m - 1) + at(column, m)) / 2;
          dot += x * median;
          xx += x * x;
          rr += median * median;
        });
      });
      return xx === 0 || rr === 0 ? 0 : Math.max(-1, Math.min(1, dot / Math.sqrt(xx * rr)));
    };
    const rng = createSeededRng('others-median-exact');
    for (const n of [2, 3, 6, 9, 40]) {
      // Half on a coarse grid (values equal to, below and above each column's middle), half not.
      const updates: TensorList[] = Array.from({ length: n }, () => [
        Float32Array.from({ length: 30 }, () => Math.round(2 * rng.normal()) / 2),
        Float32Array.from({ length: 20 }, () => rng.normal()),
      ]);
      const expected = updates.map((_, i) => definition(updates, i));
      for (const kernel of ['simd', 'scalar'] as const)
        expect(othersMedianCosines(updates, { kernel }), `n ${n}, ${kernel}`).toEqual(expected);
    }
  });

  it('gives the same cosines bit for bit with the SIMD network as with a full sort, up to 101 updates', () => {
    const rng = createSeededRng('others-median-simd');
    for (const n of [2, 5, 32, 33, 64, 101]) {
      // Half the tensors on a coarse grid (ties at the median), half continuous.
      const updates: TensorList[] = Array.from({ length: n }, () => [
        Float32Array.from({ length: 70 }, () => Math.round(2 * rng.normal()) / 2),
        Float32Array.from({ length: 45 }, () => rng.normal()),
      ]);
      const simd = othersMedianCosines(updates, { kernel: 'simd' });
      const scalar = othersMedianCosines(updates, { kernel: 'scalar' });
      expect(simd, `n ${n}`).toEqual(scalar);
      const i = n - 1;
      const others = updates.slice(0, i);
      // coordinateMedian rounds each median to f32; the cosines keep the float64 midpoint.
      expect(simd[i]).toBeCloseTo(cosineSimilarity(at(updates, i), coordinateMedian(others)), 6);
    }
  });
});
