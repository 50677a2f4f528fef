import { FlotillaError } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { adaptiveNoiseSplit, noisedUnclippedFraction, updateClipNorm } from './adaptive-clip.js';
import { loadDpVectors, relativeError } from './dp-vectors.fixture.js';
import { createSeededRng } from './random.js';

const vectors = loadDpVectors();

describe('adaptiveNoiseSplit (Flower compute_adaptive_noise_params cases)', () => {
  for (const v of vectors.adaptive_noise_split) {
    it(`z=${v.noise_multiplier}, m=${v.num_sampled_clients}, sigma_b=${String(v.clipped_count_stddev)}`, () => {
      const options = {
        noiseMultiplier: v.noise_multiplier,
        numSampledClients: v.num_sampled_clients,
        ...(v.clipped_count_stddev === null ? {} : { clippedCountStddev: v.clipped_count_stddev }),
      };
      if (typeof v.expected === 'string') {
        // The vector's message, e.g. "error: sigma_b=5 and 10 >= 2*5".
        const message = v.expected.replace(/^error: /, '');
        expect(() => adaptiveNoiseSplit(options)).toThrow(FlotillaError);
        expect(() => adaptiveNoiseSplit(options)).toThrow(message);
      } else {
        const [sigmaB, zDelta] = adaptiveNoiseSplit(options);
        expect(relativeError(sigmaB, v.expected[0])).toBeLessThan(1e-12);
        expect(relativeError(zDelta, v.expected[1])).toBeLessThan(1e-12);
      }
    });
  }
});

describe('updateClipNorm', () => {
  it('matches the geometric update vector (TFF quantile_estimation_test)', () => {
    for (const v of vectors.adaptive_clip_update) {
      const next = updateClipNorm({
        clipNorm: v.estimate,
        unclippedFraction: v.fraction_unclipped,
        targetUnclippedQuantile: v.target_unclipped_quantile,
        learningRate: v.learning_rate,
      });
      expect(relativeError(next, v.geometric_expected)).toBeLessThan(1e-6);
    }
  });

  it('grows C when too few updates fit, shrinks it when too many do', () => {
    expect(updateClipNorm({ clipNorm: 1, unclippedFraction: 0.2 })).toBeGreaterThan(1);
    expect(updateClipNorm({ clipNorm: 1, unclippedFraction: 0.9 })).toBeLessThan(1);
    expect(updateClipNorm({ clipNorm: 1, unclippedFraction: 0.5 })).toBe(1);
  });
});

describe('noisedUnclippedFraction', () => {
  it('counts norms <= C (not clipped)', () => {
    expect(noisedUnclippedFraction({ norms: [0.5, 1, 1.5, 3], clipNorm: 1 })).toBe(0.5);
  });
  it('adds N(0, sigma_b^2) to the count when asked', () => {
    const rng = createSeededRng(11);
    const n = 4000;
    let sumSq = 0;
    for (let i = 0; i < n; i++) {
      const b = noisedUnclippedFraction({ norms: [1, 2, 3, 4], clipNorm: 2.5, clippedCountStddev: 2, rng });
      sumSq += (b * 4 - 2) ** 2;
    }
    expect(Math.abs(Math.sqrt(sumSq / n) - 2)).toBeLessThan(0.1);
    expect(() => noisedUnclippedFraction({ norms: [1], clipNorm: 1, clippedCountStddev: 1 })).toThrow(
      FlotillaError,
    );
  });
});

describe('adaptive clipping simulation', () => {
  it('converges to the target quantile of lognormal norms (200 rounds, no noise)', () => {
    const rng = createSeededRng('adaptive-clip');
    // Norms ~ LogNormal(mu, s): the gamma-quantile is exp(mu + s * Phi^-1(gamma)).
    const mu = Math.log(2);
    const s = 0.5;
    const gamma = 0.8;
    const probitOfGamma = 0.8416212335729143; // Phi^-1(0.8)
    const expected = Math.exp(mu + s * probitOfGamma);
    let clipNorm = 0.1;
    const tail: number[] = [];
    for (let round = 0; round < 200; round++) {
      const norms = Array.from({ length: 200 }, () => Math.exp(mu + s * rng.normal()));
      const b = noisedUnclippedFraction({ norms, clipNorm });
      clipNorm = updateClipNorm({
        clipNorm,
        unclippedFraction: b,
        targetUnclippedQuantile: gamma,
        learningRate: 0.2,
      });
      if (round >= 150) tail.push(clipNorm);
    }
    const mean = tail.reduce((a, c) => a + c, 0) / tail.length;
    expect(Math.abs(mean - expected) / expected).toBeLessThan(0.03);
    expect(Math.abs(clipNorm - expected) / expected).toBeLessThan(0.05);
  });
});
