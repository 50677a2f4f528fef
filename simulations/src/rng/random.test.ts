import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRng } from './random.js';
import { splitmix32, stateFromSeed, xoshiro128StarStar } from './xoshiro128.js';

// Expected values come from the reference definitions, not from this code:
// - xoshiro128** on state {1, 2, 3, 4}: by hand, result = rotl(s[1] * 5, 7) * 9 = rotl(10, 7) * 9
//   = 1280 * 9 = 11520; the second output is 0 because after one step s[1] = 2 ^ (3 ^ 1) = 0.
// - The longer sequences were computed with a separate Python transcription of
//   https://prng.di.unimi.it/xoshiro128starstar.c and of splitmix32 (golden-ratio increment +
//   MurmurHash3 fmix32), using arbitrary-precision integers masked to 32 bits.
describe('xoshiro128** and splitmix32 reference outputs', () => {
  it('matches the hand-derived outputs for state {1,2,3,4}', () => {
    const state = Uint32Array.of(1, 2, 3, 4);
    const outputs = [0, 1, 2, 3].map(() => xoshiro128StarStar(state));
    expect(outputs).toEqual([11520, 0, 5927040, 70819200]);
  });

  it('splitmix32(0) gives the fmix32 of the golden-ratio increments', () => {
    const next = splitmix32(0);
    expect([next(), next(), next(), next()]).toEqual([0x92ca2f0e, 0x3cd6e3f3, 0x1b147dcc, 0x4c081dbf]);
  });

  it('seed 42 expands through splitmix32 and then runs xoshiro128**', () => {
    expect(Array.from(stateFromSeed(42))).toEqual([0x3805ea2c, 0xeb5cd984, 0x1327aacb, 0xc5ba443d]);
    const rng = createRng(42);
    const outputs = [0, 1, 2, 3, 4].map(() => rng.nextUint32());
    expect(outputs).toEqual([2837322924, 544945897, 479756282, 3500138142, 339756180]);
  });
});

describe('Rng', () => {
  it('is reproducible for a seed and differs between seeds', () => {
    fc.assert(
      fc.property(fc.nat(), (seed) => {
        const a = createRng(seed);
        const b = createRng(seed);
        const c = createRng(seed + 1);
        const drawsA = [0, 1, 2, 3].map(() => a.next());
        expect([0, 1, 2, 3].map(() => b.next())).toEqual(drawsA);
        expect([0, 1, 2, 3].map(() => c.next())).not.toEqual(drawsA);
      }),
      { numRuns: 50 },
    );
  });

  it('forks by name: a child does not depend on draws made elsewhere', () => {
    const fresh = createRng(7).fork('device-3');
    const busy = createRng(7);
    for (let i = 0; i < 100; i += 1) busy.next();
    const sibling = busy.fork('device-2');
    for (let i = 0; i < 100; i += 1) sibling.next();
    const late = busy.fork('device-3');
    const expected = [0, 1, 2].map(() => fresh.nextUint32());
    expect([0, 1, 2].map(() => late.nextUint32())).toEqual(expected);
    expect(createRng(7).fork('device-4').nextUint32()).not.toBe(expected[0]);
    expect(createRng(8).fork('device-3').nextUint32()).not.toBe(expected[0]);
    expect(createRng(7).fork('a').fork('b').path).toBe('seed:7/a/b');
  });

  it('uniform draws have mean 1/2 and variance 1/12', () => {
    const rng = createRng(1);
    const n = 50_000;
    let sum = 0;
    let sumSq = 0;
    let min = 1;
    let max = 0;
    for (let i = 0; i < n; i += 1) {
      const u = rng.next();
      min = Math.min(min, u);
      max = Math.max(max, u);
      sum += u;
      sumSq += u * u;
    }
    const mean = sum / n;
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    expect(mean).toBeCloseTo(0.5, 2);
    expect(sumSq / n - mean * mean).toBeCloseTo(1 / 12, 2);
  });

  it('int() is uniform over its range', () => {
    const fresh = createRng(2);
    const tallies = new Array<number>(7).fill(0);
    for (let i = 0; i < 70_000; i += 1) {
      const k = fresh.int(7);
      tallies[k] = (tallies[k] ?? 0) + 1;
    }
    // Each bin expects 10,000 with sd ≈ 93; 5 sd is a generous bound.
    for (const count of tallies) expect(Math.abs(count - 10_000)).toBeLessThan(470);
  });

  it('normal draws have the requested mean and variance', () => {
    const rng = createRng(3);
    const n = 50_000;
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < n; i += 1) {
      const x = rng.normal(2, 3);
      sum += x;
      sumSq += x * x;
    }
    const mean = sum / n;
    expect(Math.abs(mean - 2)).toBeLessThan(0.06); // sd of the mean is 3/sqrt(n) ≈ 0.013
    expect(Math.abs(sumSq / n - mean * mean - 9)).toBeLessThan(0.3);
  });

  it('gamma(k, θ) has mean kθ and variance kθ² (including the k < 1 boost)', () => {
    for (const [shape, scale] of [
      [0.3, 1],
      [2.5, 2],
    ] as const) {
      const rng = createRng(4);
      const n = 40_000;
      let sum = 0;
      let sumSq = 0;
      for (let i = 0; i < n; i += 1) {
        const x = rng.gamma(shape, scale);
        if (!(x >= 0)) throw new Error(`negative gamma draw ${x}`);
        sum += x;
        sumSq += x * x;
      }
      const mean = sum / n;
      const variance = sumSq / n - mean * mean;
      expect(Math.abs(mean - shape * scale) / (shape * scale)).toBeLessThan(0.03);
      expect(Math.abs(variance - shape * scale * scale) / (shape * scale * scale)).toBeLessThan(0.08);
    }
  });

  it('dirichlet draws lie on the simplex with mean alpha_i / sum(alpha)', () => {
    const rng = createRng(5);
    const alphas = [0.5, 1, 2.5];
    const means = [0, 0, 0];
    const n = 20_000;
    for (let i = 0; i < n; i += 1) {
      const p = rng.dirichlet(alphas);
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      p.forEach((value, index) => (means[index] = (means[index] ?? 0) + value / n));
    }
    expect(means[0]).toBeCloseTo(0.125, 2);
    expect(means[1]).toBeCloseTo(0.25, 2);
    expect(means[2]).toBeCloseTo(0.625, 2);
  });

  it('shuffle is a permutation, choice picks members, and bad input is refused', () => {
    const rng = createRng(6);
    const items = rng.permutation(100);
    expect([...items].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(items).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(['a', 'b']).toContain(rng.choice(['a', 'b']));
    expect(() => rng.choice([])).toThrow(/empty/);
    expect(() => rng.gamma(0)).toThrow(/shape/);
    expect(() => createRng(-1)).toThrow(/seed/);
  });
});
