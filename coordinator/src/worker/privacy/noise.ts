import { FlotillaError, f32At } from '@flotilla/protocol';
import type { RandomSource } from './random.js';

/** Options of {@link noiseStdOnAverage}. */
export interface NoiseStdOptions {
  /** Noise multiplier z >= 0. */
  noiseMultiplier: number;
  /** L2 clip norm C of each update (> 0). */
  clipNorm: number;
  /** Number of updates m averaged (>= 1). */
  numUpdates: number;
}

/**
 * Std of the Gaussian noise added to the (unweighted) average of m clipped updates: z · C / m
 * (the sum has sensitivity C, so N(0, (zC)²) on the sum is N(0, (zC/m)²) on the average).
 */
export function noiseStdOnAverage(options: NoiseStdOptions): number {
  const { noiseMultiplier, clipNorm, numUpdates } = options;
  if (!(noiseMultiplier >= 0))
    throw new FlotillaError('BAD_REQUEST', `noise multiplier must be >= 0, got ${noiseMultiplier}`);
  if (!(clipNorm > 0)) throw new FlotillaError('BAD_REQUEST', `clip norm must be > 0, got ${clipNorm}`);
  if (!Number.isInteger(numUpdates) || numUpdates < 1) {
    throw new FlotillaError('BAD_REQUEST', `number of updates must be an integer >= 1, got ${numUpdates}`);
  }
  return (noiseMultiplier * clipNorm) / numUpdates;
}

/**
 * Returns a new array: `values` plus independent N(0, std²) noise on every coordinate. The input
 * is not modified. `rng`: {@link createCryptoRng} in production, a seeded generator in simulations.
 */
export function addGaussianNoise(values: Float32Array, std: number, rng: RandomSource): Float32Array {
  if (!(std >= 0) || !Number.isFinite(std))
    throw new FlotillaError('BAD_REQUEST', `noise std must be finite and >= 0, got ${std}`);
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32At(values, i) + (std === 0 ? 0 : std * rng.normal());
  return out;
}
