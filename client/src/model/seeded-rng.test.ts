import { describe, expect, it } from 'vitest';
import { createRng, nextInt, shuffledIndices } from './seeded-rng.js';

describe('seeded rng helpers', () => {
  it('shuffles into a permutation, reproducibly, and differently for another seed', () => {
    const a = shuffledIndices(100, createRng(7));
    const b = shuffledIndices(100, createRng(7));
    const c = shuffledIndices(100, createRng(8));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(c)).not.toEqual(Array.from(a));
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('draws integers in range with roughly uniform frequencies', () => {
    const rng = createRng(1);
    const counts = new Array<number>(4).fill(0);
    for (let i = 0; i < 4000; i++) {
      const k = nextInt(rng, 4);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    // Binomial(4000, 1/4): sd ≈ 27, so ±150 is > 5 sd.
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(150);
  });
});
