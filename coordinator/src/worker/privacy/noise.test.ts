import { describe, expect, it } from 'vitest';
import { loadDpVectors, relativeError } from './dp-vectors.fixture.js';
import { addGaussianNoise, noiseStdOnAverage } from './noise.js';
import { createCryptoRng, createSeededRng } from './random.js';

const vectors = loadDpVectors();

describe('noiseStdOnAverage', () => {
  it('is z * C / m (Flower differential_privacy_test)', () => {
    for (const v of vectors.noise_std) {
      const std = noiseStdOnAverage({
        noiseMultiplier: v.noise_multiplier,
        clipNorm: v.clipping_norm,
        numUpdates: v.num_sampled_clients,
      });
      expect(relativeError(std, v.expected_std)).toBeLessThan(1e-12);
    }
  });
});

describe('random sources', () => {
  it('a seed reproduces the same sequence; different seeds differ', () => {
    const a = createSeededRng(42);
    const b = createSeededRng(42);
    const c = createSeededRng('another seed');
    const xs = Array.from({ length: 8 }, () => a.normal());
    expect(Array.from({ length: 8 }, () => b.normal())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => c.normal())).not.toEqual(xs);
  });

  it('normal samples have mean 0 and variance 1 (seeded and crypto)', () => {
    for (const rng of [createSeededRng(7), createCryptoRng()]) {
      const n = 40_000;
      let sum = 0;
      let sumSq = 0;
      for (let i = 0; i < n; i++) {
        const x = rng.normal();
        sum += x;
        sumSq += x * x;
      }
      // 5 standard errors: mean SE = 1/sqrt(n) = 0.005, variance SE = sqrt(2/n) ≈ 0.007.
      expect(Math.abs(sum / n)).toBeLessThan(0.025);
      expect(Math.abs(sumSq / n - 1)).toBeLessThan(0.035);
    }
  });

  it('uniform samples lie in [0, 1) with mean 1/2', () => {
    const rng = createSeededRng(1);
    let sum = 0;
    for (let i = 0; i < 20_000; i++) {
      const u = rng.uniform();
      expect(u >= 0 && u < 1).toBe(true);
      sum += u;
    }
    expect(Math.abs(sum / 20_000 - 0.5)).toBeLessThan(0.011);
  });
});

describe('addGaussianNoise', () => {
  it('adds noise of the requested std without touching the input', () => {
    const values = new Float32Array(50_000).fill(3);
    const noised = addGaussianNoise(values, 0.5, createSeededRng(3));
    expect(values.every((v) => v === 3)).toBe(true);
    let sum = 0;
    let sumSq = 0;
    for (const v of noised) {
      sum += v - 3;
      sumSq += (v - 3) ** 2;
    }
    expect(Math.abs(sum / noised.length)).toBeLessThan(0.5 * 5 * Math.sqrt(1 / noised.length));
    expect(Math.abs(Math.sqrt(sumSq / noised.length) - 0.5)).toBeLessThan(0.01);
  });

  it('std 0 returns a copy', () => {
    const values = Float32Array.from([1, -2, 3]);
    const out = addGaussianNoise(values, 0, createSeededRng(0));
    expect(out).toEqual(values);
    expect(out).not.toBe(values);
  });
});
