import { FlotillaError } from './errors.js';

// Rational approximations of the standard normal quantile published by P. J. Acklam (2003,
// "An algorithm for computing the inverse normal cumulative distribution function"): relative
// error below 1.15e-9 over (0, 1), enough for significance levels and attack parameters.
const A = [
  -3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1,
  2.506628277459239,
] as const;
const B = [
  -5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1,
] as const;
const C = [
  -7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968,
  2.938163982698783,
] as const;
const D = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416] as const;
const P_LOW = 0.02425;

/** Horner evaluation of c[0]·x^(n−1) + … + c[n−1]. */
function horner(coefficients: readonly number[], x: number): number {
  return coefficients.reduce((acc, c) => acc * x + c, 0);
}

function tail(p: number): number {
  const q = Math.sqrt(-2 * Math.log(p));
  return horner(C, q) / (horner(D, q) * q + 1);
}

/**
 * Φ⁻¹(p): the z with P(Z <= z) = p for a standard normal Z (e.g. 0.975 -> 1.959964). Used for
 * one-sided significance thresholds and the z_max of Baruch et al.'s "a little is enough" attack.
 * Throws BAD_REQUEST outside the open interval (0, 1).
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new FlotillaError('BAD_REQUEST', `normal quantile needs 0 < p < 1, got ${p}`);
  if (p < P_LOW) return tail(p);
  if (p > 1 - P_LOW) return -tail(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (horner(A, r) * q) / (horner(B, r) * r + 1);
}

/**
 * Φ(z) = P(Z <= z) for a standard normal Z, from the complementary error function in the
 * Chebyshev form of Numerical Recipes (`erfcc`, fractional error below 1.2e-7 everywhere).
 */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const poly = horner(
    [
      0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196,
      1.00002368, -1.26551223,
    ],
    t,
  );
  const erfc = t * Math.exp(-x * x + poly);
  return z >= 0 ? 1 - erfc / 2 : erfc / 2;
}
