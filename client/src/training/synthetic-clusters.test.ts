import { describe, expect, it } from 'vitest';
import { syntheticClusters } from './synthetic-clusters.js';

describe('syntheticClusters', () => {
  it("draws from the LCG x' = 1664525·x + 1013904223 mod 2^32 (hand-computed first draws)", () => {
    // Seed 1: x1 = 1015568748, x2 = 1586005467, x3 = 2165703038, x4 = 3027450565, x5 = 217083232.
    // Label floor(3·x1/2^32) = 0; features (2 or 0) + x/2^32 - 0.5 for x2..x5.
    const data = syntheticClusters({ n: 1, features: 4, seed: 1 });
    expect(Array.from(data.ys)).toEqual([0]);
    const expected = [2 + 1586005467 / 2 ** 32 - 0.5, 2165703038 / 2 ** 32 - 0.5, 3027450565 / 2 ** 32 - 0.5];
    expected.push(217083232 / 2 ** 32 - 0.5);
    expect(Array.from(data.xs)).toEqual(expected.map((v) => Math.fround(v)));
    expect(data.featureShape).toEqual([4]);
  });

  it('centres class c on 2·e_c, is deterministic from its seed, and takes a label rule', () => {
    const data = syntheticClusters({ n: 3000, features: 5, classes: 4, seed: 9 });
    expect(syntheticClusters({ n: 3000, features: 5, classes: 4, seed: 9 })).toEqual(data);
    for (let c = 0; c < 4; c++) {
      const rows = [...data.ys.keys()].filter((i) => data.ys[i] === c);
      expect(rows.length).toBeGreaterThan(600);
      for (let f = 0; f < 5; f++) {
        const mean = rows.reduce((s, i) => s + (data.xs[i * 5 + f] ?? Number.NaN), 0) / rows.length;
        expect(mean).toBeCloseTo(f === c ? 2 : 0, 1);
      }
    }
    const skewed = syntheticClusters({ n: 1000, features: 3, seed: 2, label: (r) => (r() < 0.7 ? 1 : 0) });
    const ones = Array.from(skewed.ys).filter((y) => y === 1).length;
    expect(ones).toBeGreaterThan(650);
    expect(ones).toBeLessThan(750);
  });
});
