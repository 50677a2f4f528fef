import { FlotillaError } from '@flotilla/protocol';
import type { RandomSource } from './random.js';

/**
 * Adaptive clipping (Andrew, Thakkar, McMahan, Ramaswamy 2021, "Differentially Private Learning
 * with Adaptive Clipping"): the clip norm C tracks the γ-quantile of the update norms with the
 * geometric rule C ← C · exp(−η (b̄ − γ)), where b̄ is the (noised) fraction of updates whose norm
 * was <= C, i.e. NOT clipped. If too few updates fit (b̄ < γ), C grows; if too many, C shrinks.
 *
 * Note: Flower's current DP wrappers count the clipped updates in that indicator while still
 * applying this sign, which moves C the wrong way (away from the quantile); Flotilla counts the
 * unclipped ones, as the paper and TFF's quantile estimator do.
 */

/** Options of {@link adaptiveNoiseSplit}. */
export interface AdaptiveNoiseSplitOptions {
  /** Overall noise multiplier z of the round (the privacy the accountant is told about). */
  noiseMultiplier: number;
  /** Updates per round m. */
  numSampledClients: number;
  /** Std σ_b of the noise on the unclipped count. Default m / 20 (Andrew et al. 2021). */
  clippedCountStddev?: number;
}

/**
 * Splits the privacy of z between the count query and the update query:
 * z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2) (the count has sensitivity 1/2 after centring, so its own noise
 * multiplier is 2σ_b and the two compose to z). Returns `[σ_b, z_Δ]` like Flower's
 * `compute_adaptive_noise_params`: with z = 0 no noise is added anywhere, σ_b defaults to 0.
 * Throws BAD_REQUEST when z >= 2σ_b: the count would use more than the whole budget.
 */
export function adaptiveNoiseSplit(
  options: AdaptiveNoiseSplitOptions,
): [clippedCountStddev: number, updateNoiseMultiplier: number] {
  const { noiseMultiplier: z, numSampledClients: m } = options;
  if (!(z >= 0)) throw new FlotillaError('BAD_REQUEST', `noise multiplier must be >= 0, got ${z}`);
  if (!(m >= 1)) throw new FlotillaError('BAD_REQUEST', `sampled clients must be >= 1, got ${m}`);
  if (z === 0) return [options.clippedCountStddev ?? 0, 0];
  const sigmaB = options.clippedCountStddev ?? m / 20;
  if (z >= 2 * sigmaB) {
    throw new FlotillaError(
      'BAD_REQUEST',
      `adaptive clipping: sigma_b=${sigmaB} and ${z} >= 2*${sigmaB}: the unclipped-count noise (default m/20) is too ` +
        `small for noise multiplier ${z}; set clippedCountStddev above ${z / 2}`,
    );
  }
  return [sigmaB, (z ** -2 - (2 * sigmaB) ** -2) ** -0.5];
}

/** Options of {@link noisedUnclippedFraction}. */
export interface UnclippedFractionOptions {
  /** L2 norms of this round's updates before clipping. */
  norms: readonly number[];
  /** Clip norm C used this round. */
  clipNorm: number;
  /** Std σ_b of Gaussian noise on the count. Default 0 (no noise: simulations only). */
  clippedCountStddev?: number;
  /** Required when clippedCountStddev > 0. */
  rng?: RandomSource;
}

/** b̄ = (#{norm <= C} + N(0, σ_b²)) / m: the fraction of updates that were NOT clipped. */
export function noisedUnclippedFraction(options: UnclippedFractionOptions): number {
  const { norms, clipNorm } = options;
  const sigma = options.clippedCountStddev ?? 0;
  if (norms.length === 0) throw new FlotillaError('INTERNAL', 'no update norms');
  const unclipped = norms.filter((norm) => norm <= clipNorm).length;
  if (sigma === 0) return unclipped / norms.length;
  if (options.rng === undefined)
    throw new FlotillaError('INTERNAL', 'a random source is required for a noised count');
  return (unclipped + sigma * options.rng.normal()) / norms.length;
}

/** Options of {@link updateClipNorm}. */
export interface UpdateClipNormOptions {
  /** Current clip norm C (> 0). */
  clipNorm: number;
  /** Noised fraction b̄ of updates that were not clipped (may leave [0, 1] because of noise). */
  unclippedFraction: number;
  /** Target quantile γ in (0, 1). Default 0.5. */
  targetUnclippedQuantile?: number;
  /** Learning rate η > 0. Default 0.2 (Andrew et al. 2021). */
  learningRate?: number;
}

/** The geometric update C · exp(−η (b̄ − γ)). */
export function updateClipNorm(options: UpdateClipNormOptions): number {
  const { clipNorm, unclippedFraction } = options;
  const gamma = options.targetUnclippedQuantile ?? 0.5;
  const eta = options.learningRate ?? 0.2;
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm))
    throw new FlotillaError('BAD_REQUEST', `clip norm must be finite and > 0, got ${clipNorm}`);
  if (!Number.isFinite(unclippedFraction))
    throw new FlotillaError('INTERNAL', 'unclipped fraction must be finite');
  return clipNorm * Math.exp(-eta * (unclippedFraction - gamma));
}
