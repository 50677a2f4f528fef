import { describe, expect, it } from 'vitest';
import { shuffle } from './round-plan-builder.js';

describe('shuffle (device selection)', () => {
  it('returns a permutation of its input and leaves the input alone', () => {
    const devices = ['a', 'b', 'c', 'd', 'e'];
    const out = shuffle(devices);
    expect([...out].sort()).toEqual(devices);
    expect(devices).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('draws every order of three devices about equally often (chi-square, 5 degrees of freedom)', () => {
    const draws = 6000;
    const counts = new Map<string, number>();
    for (let k = 0; k < draws; k++) {
      const key = shuffle(['a', 'b', 'c']).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    const expected = draws / 6;
    const chi2 = [...counts.values()].reduce((sum, n) => sum + (n - expected) ** 2 / expected, 0);
    // P(χ²₅ > 25.7) = 1e-4: a fair shuffle fails this once in ten thousand runs.
    expect(chi2).toBeLessThan(25.7);
  });
});
