import { FlotillaError } from '@flotilla/protocol';
import { logAdd, logErfc, logSub } from './log-math.js';

/**
 * RDP of the sampled Gaussian mechanism (SGM): Mironov 2017, "Rényi Differential Privacy", and
 * Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism".
 * The computation follows TF Privacy's rdp_accountant (`_compute_log_a_int`,
 * `_compute_log_a_frac`), so its published numbers are reproduced.
 */

/** Options of {@link computeRdp}. */
export interface ComputeRdpOptions {
  /** Sampling rate q in [0, 1]: the probability that a given device (or example) is in a round. */
  q: number;
  /** Noise multiplier z (σ): noise std divided by the L2 sensitivity (clip norm). z >= 0. */
  noiseMultiplier: number;
  /** Number of compositions (rounds) of the mechanism. Integer >= 0. */
  steps: number;
  /** Rényi orders α > 1 (Infinity allowed). */
  orders: readonly number[];
}

// The fractional series stops once both new terms are below exp(-30) (TF Privacy's rule);
// the cap only guards against a pathological input looping forever.
const FRAC_SERIES_CUTOFF = -30;
const FRAC_SERIES_MAX_TERMS = 1_000_000;

/** log A_α for integer α: the exact binomial expansion (Mironov et al. 2019, Section 3.3). */
function logAInteger(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let logA = -Infinity;
  let logBinom = 0; // log C(alpha, 0)
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log(alpha - i + 1) - Math.log(i);
    const s = logBinom + i * logQ + (alpha - i) * log1mQ + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

/** log A_α for fractional α: two alternating series with log-erfc terms (Mironov et al. 2019, Section 3.3). */
function logAFractional(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const sqrt2Sigma = Math.SQRT2 * sigma;
  let logAbsCoef = 0; // log |C(alpha, 0)|
  let coefPositive = true;
  for (let i = 0; i < FRAC_SERIES_MAX_TERMS; i++) {
    if (i > 0) {
      // C(alpha, i) = C(alpha, i - 1) * (alpha - i + 1) / i, tracked as sign and log-magnitude.
      const factor = (alpha - i + 1) / i;
      logAbsCoef += Math.log(Math.abs(factor));
      if (factor < 0) coefPositive = !coefPositive;
    }
    const j = alpha - i;
    const logT0 = logAbsCoef + i * logQ + j * log1mQ;
    const logT1 = logAbsCoef + j * logQ + i * log1mQ;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / sqrt2Sigma);
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / sqrt2Sigma);
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (coefPositive) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < FRAC_SERIES_CUTOFF) return logAdd(logA0, logA1);
  }
  throw new FlotillaError('INTERNAL', `RDP series did not converge (q=${q}, sigma=${sigma}, alpha=${alpha})`);
}

/** RDP ε(α) of one step of the sampled Gaussian mechanism. */
export function rdpSampledGaussian(q: number, noiseMultiplier: number, order: number): number {
  if (q === 0) return 0;
  if (noiseMultiplier === 0) return Infinity;
  if (q === 1) return order / (2 * noiseMultiplier * noiseMultiplier);
  if (order === Infinity) return Infinity;
  const logA = Number.isInteger(order)
    ? logAInteger(q, noiseMultiplier, order)
    : logAFractional(q, noiseMultiplier, order);
  return logA / (order - 1);
}

function checkRdpArguments(options: ComputeRdpOptions): void {
  const { q, noiseMultiplier, steps, orders } = options;
  if (!(q >= 0 && q <= 1))
    throw new FlotillaError('BAD_REQUEST', `sampling rate q must be in [0, 1], got ${q}`);
  if (!(noiseMultiplier >= 0) || !Number.isFinite(noiseMultiplier)) {
    throw new FlotillaError(
      'BAD_REQUEST',
      `noise multiplier must be finite and >= 0, got ${noiseMultiplier}`,
    );
  }
  if (!Number.isInteger(steps) || steps < 0) {
    throw new FlotillaError('BAD_REQUEST', `steps must be an integer >= 0, got ${steps}`);
  }
  for (const order of orders) {
    if (!(order > 1)) throw new FlotillaError('BAD_REQUEST', `Rényi orders must be > 1, got ${order}`);
  }
}

/**
 * RDP of `steps` compositions of the sampled Gaussian mechanism at each order (composition
 * adds RDP). Special cases: q = 0 → 0; z = 0 → ∞; q = 1 → α / (2 z²) per step; α = ∞ → ∞.
 * @returns one value per order, in the order given (nats).
 */
export function computeRdp(options: ComputeRdpOptions): number[] {
  checkRdpArguments(options);
  const { q, noiseMultiplier, steps, orders } = options;
  return orders.map((order) => {
    const perStep = rdpSampledGaussian(q, noiseMultiplier, order);
    // 0 * ∞ would be NaN: zero steps spend nothing.
    return steps === 0 ? 0 : perStep * steps;
  });
}
