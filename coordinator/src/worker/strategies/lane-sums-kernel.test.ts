import { describe, expect, it } from 'vitest';
import { createSeededRng } from '../privacy/random.js';
import { normAndCosine, normsAndCosinesTo } from '../audit/cosine.js';
import { squaredDistance, squaredDistances } from './checks.js';
import { BLOCK, laneDotsAndSquares, laneSquaredDistances } from './lane-sums-kernel.js';

// The definitions these sums must equal bit for bit: one update (or pair) at a time, each sum
// added in coordinate order (normAndCosine, squaredDistance).

/** Lengths around the kernel's steps (4 floats) and its scratch blocks. */
const LENGTHS = [0, 1, 3, 4, 5, BLOCK - 1, BLOCK, BLOCK + 3, 2 * BLOCK + 6];

function drawer(seed: string) {
  const rng = createSeededRng(seed);
  // Magnitudes from f32 subnormals to near its maximum (whose squares overflow f32, not f64),
  // with zeros of both signs and the values that make a sum NaN or infinite.
  const special = [0, -0, 1e-45, -3e-39, 3.4e38, -3.4e38, Number.NaN, Number.POSITIVE_INFINITY];
  return (length: number, withSpecial = false): Float32Array =>
    Float32Array.from({ length }, () => {
      const r = rng.uniform();
      if (withSpecial && r < 0.002) return special[Math.floor(rng.uniform() * special.length)] ?? 0;
      return rng.normal() * 10 ** Math.floor(rng.uniform() * 12 - 6);
    });
}

describe('lane sums kernel', () => {
  it("gives every update's Σ x·y and Σ x² of a plain loop, bit for bit, over tensors of every length", () => {
    const draw = drawer('lane-dots');
    for (const lengths of [[...LENGTHS], [BLOCK + 1], [7, 0, BLOCK - 2]]) {
      const reference = lengths.map((length) => draw(length));
      for (const n of [1, 2, 3, 4, 5, 9]) {
        const updates = Array.from({ length: n }, (_, i) =>
          lengths.map((length) => draw(length, i % 2 === 1)),
        );
        const expected = updates.map((u) => normAndCosine(u, reference));
        expect(normsAndCosinesTo(updates, reference)).toEqual(expected);
        expect(normsAndCosinesTo(updates, reference, { kernel: 'scalar' })).toEqual(expected);
        const lane = laneDotsAndSquares(updates, reference);
        expect(lane).not.toBeNull();
        // Σ x² as the definition adds it.
        expect(Array.from(lane?.self ?? [])).toEqual(
          updates.map((u) => u.reduce((sum, t) => t.reduce((s, x) => s + x * x, sum), 0)),
        );
      }
    }
  });

  it("gives each pair's Σ (a − b)² of a plain loop, bit for bit, at every length and group size", () => {
    const draw = drawer('lane-distances');
    for (const length of LENGTHS) {
      const vectors = Array.from({ length: 7 }, (_, i) => draw(length, i >= 4));
      // A vector paired with itself gives exactly 0.
      const pairs = vectors.flatMap((a, i) => vectors.slice(i).map((b) => [a, b] as const));
      for (const count of [1, 2, 3, 4, 5, 8, 9, pairs.length]) {
        const chosen = pairs.slice(0, count);
        const expected = chosen.map(([a, b]) => squaredDistance(a, b));
        expect(laneSquaredDistances(chosen)).toEqual(expected);
        expect(squaredDistances(chosen)).toEqual(expected);
        expect(squaredDistances(chosen, { kernel: 'scalar' })).toEqual(expected);
      }
    }
    expect(laneSquaredDistances([])).toEqual([]);
  });

  it('leaves no trace between calls: sums start from zero each time', () => {
    const draw = drawer('lane-fresh');
    const a = draw(BLOCK + 5);
    const b = draw(BLOCK + 5);
    const first = laneSquaredDistances([[a, b]]);
    laneDotsAndSquares([[a], [b], [a]], [b]);
    expect(laneSquaredDistances([[a, b]])).toEqual(first);
    expect(first).toEqual([squaredDistance(a, b)]);
  });
});
