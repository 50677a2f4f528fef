// Confidence intervals of a mean over repeated runs: mean ± t(1 − α/2; n − 1) · s / √n, with s the
// sample standard deviation and t the Student-t quantile. The t CDF comes from the regularized
// incomplete beta function (Abramowitz & Stegun 26.7.1: P(|T| ≤ t) = 1 − I_{ν/(ν+t²)}(ν/2, 1/2)),
// evaluated by its continued fraction (A&S 26.5.8, Lentz's method), with ln Γ from Lanczos'
// approximation (g = 7, n = 9, the coefficients of Godfrey); the quantile is found by bisection.
import { FlotillaError } from '@flotilla/protocol';

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0. */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let sum = LANCZOS[0] ?? 0;
  for (let i = 1; i < LANCZOS.length; i++) sum += (LANCZOS[i] ?? 0) / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** Continued fraction of the incomplete beta function (valid for x < (a + 1) / (a + b + 2)). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 500; m++) {
    const even = (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m));
    d = 1 + even * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + even / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    const odd = (-(a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + odd * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + odd / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const step = d * c;
    h *= step;
    if (Math.abs(step - 1) < 1e-15) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b), for x in [0, 1] and a, b > 0. */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The fraction converges fast below the mean; above it, use I_x(a, b) = 1 − I_{1−x}(b, a).
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(x, a, b)) / a;
  return 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The p-quantile of Student's t with `df` > 0 degrees of freedom, p in (0, 1). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new FlotillaError('BAD_REQUEST', `quantile level must be in (0, 1), got ${p}`);
  if (!(df > 0)) throw new FlotillaError('BAD_REQUEST', `degrees of freedom must be > 0, got ${df}`);
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  // The CDF is increasing; double the bracket until it holds the quantile, then bisect.
  let low = 0;
  let high = 1;
  while (studentTCdf(high, df) < p && high < 1e12) high *= 2;
  for (let i = 0; i < 200 && high - low > 1e-12 * Math.max(1, high); i++) {
    const mid = (low + high) / 2;
    if (studentTCdf(mid, df) < p) low = mid;
    else high = mid;
  }
  return (low + high) / 2;
}

/** Mean of repeated measurements with its Student-t confidence interval. */
export interface MeanInterval {
  /** Measurements (runs) the mean is over. */
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1 in the denominator); 0 for a single run. */
  sd: number;
  /** Half the interval's width; null when n < 2 (no interval from one run). */
  halfWidth: number | null;
  low: number | null;
  high: number | null;
}

/** Default confidence level of every interval. */
export const CONFIDENCE = 0.95;

/**
 * The mean of `values` and its two-sided `confidence` interval, mean ± t(1 − α/2; n − 1)·s/√n
 * (Student 1908). Empty input is an error; one value gives no interval.
 */
export function meanInterval(values: readonly number[], confidence = CONFIDENCE): MeanInterval {
  const n = values.length;
  if (n === 0) throw new FlotillaError('BAD_REQUEST', 'a mean needs at least one value');
  const mean = values.reduce((sum, v) => sum + v, 0) / n;
  if (n === 1) return { n, mean, sd: 0, halfWidth: null, low: null, high: null };
  const sd = Math.sqrt(values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (n - 1));
  const halfWidth = (studentTQuantile(1 - (1 - confidence) / 2, n - 1) * sd) / Math.sqrt(n);
  return { n, mean, sd, halfWidth, low: mean - halfWidth, high: mean + halfWidth };
}
