import { FlotillaError, at } from '@flotilla/protocol';

/**
 * Log-space arithmetic and the complementary error function for the RDP accountant.
 *
 * JavaScript's Math has no erfc. `erfc` below follows FreeBSD msun's s_erf.c (fdlibm), whose
 * rational approximations are accurate to under one ulp; `logErfc` reuses the same rational
 * approximation in log form so it does not underflow, and an asymptotic series beyond x = 28.
 *
 * The fdlibm coefficients carry this notice:
 * ====================================================
 * Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
 *
 * Developed at SunPro, a Sun Microsystems, Inc. business.
 * Permission to use, copy, modify, and distribute this
 * software is freely granted, provided that this notice
 * is preserved.
 * ====================================================
 */

/** log(exp(x) + exp(y)) without overflow; -Infinity is the log of 0. */
export function logAdd(x: number, y: number): number {
  const lo = Math.min(x, y);
  const hi = Math.max(x, y);
  if (lo === -Infinity) return hi;
  return Math.log1p(Math.exp(lo - hi)) + hi;
}

/** log(exp(x) - exp(y)) for x >= y; throws when the difference would be negative. */
export function logSub(x: number, y: number): number {
  if (x < y) {
    throw new FlotillaError('INTERNAL', `logSub: log of a negative number (x=${x} < y=${y})`);
  }
  if (y === -Infinity) return x;
  if (x === y) return -Infinity;
  const d = x - y;
  // expm1 overflows past ~709; then exp(y) is negligible next to exp(x).
  if (d > 700) return x;
  return Math.log(Math.expm1(d)) + y;
}

const ERX = 8.45062911510467529297e-1;
const PP = [
  1.28379167095512558561e-1, -3.2504210724700149937e-1, -2.84817495755985104766e-2,
  -5.77027029648944159157e-3, -2.37630166566501626084e-5,
];
const QQ = [
  1, 3.97917223959155352819e-1, 6.50222499887672944485e-2, 5.08130628187576562776e-3,
  1.32494738004321644526e-4, -3.9602282787753681232e-6,
];
const PA = [
  -2.36211856075265944077e-3, 4.14856118683748331666e-1, -3.72207876035701323847e-1,
  3.18346619901161753674e-1, -1.10894694282396677476e-1, 3.54783043256182359371e-2, -2.166375594868790843e-3,
];
const QA = [
  1, 1.06420880400844228286e-1, 5.40397917702171048937e-1, 7.18286544141962662868e-2,
  1.26171219808761642112e-1, 1.36370839120290507362e-2, 1.1984499846799107417e-2,
];
const RA = [
  -9.86494403484714822705e-3, -6.93858572707181764372e-1, -1.05586262253232909814e1,
  -6.23753324503260060396e1, -1.62396669462573470355e2, -1.84605092906711035994e2, -8.12874355063065934246e1,
  -9.81432934416914548592,
];
const SA = [
  1, 1.96512716674392571292e1, 1.376577541435190426e2, 4.34565877475229228821e2, 6.45387271733267880336e2,
  4.29008140027567833386e2, 1.08635005541779435134e2, 6.57024977031928170135, -6.04244152148580987438e-2,
];
const RB = [
  -9.86494292470009928597e-3, -7.99283237680523006574e-1, -1.77579549177547519889e1,
  -1.60636384855821916062e2, -6.37566443368389627722e2, -1.02509513161107724954e3, -4.83519191608651397019e2,
];
const SB = [
  1, 3.03380607434824582924e1, 3.25792512996573918826e2, 1.53672958608443695994e3, 3.19985821950859553908e3,
  2.55305040643316442583e3, 4.74528541206955367215e2, -2.24409524465858183362e1,
];

/** Horner evaluation of sum coefficients[k] * s^k. */
function poly(coefficients: readonly number[], s: number): number {
  let acc = 0;
  for (let k = coefficients.length - 1; k >= 0; k--) acc = acc * s + at(coefficients, k);
  return acc;
}

const scratch = new DataView(new ArrayBuffer(8));

/** x with its low 32 bits cleared, so z*z is exact (fdlibm's trick for exp(-x*x)). */
function truncateLowWord(x: number): number {
  scratch.setFloat64(0, x);
  scratch.setUint32(4, 0);
  return scratch.getFloat64(0);
}

/**
 * For 1.25 <= x < 28, fdlibm writes x * erfc(x) = exp(big) * exp(small) with big = -z*z - 0.5625
 * exact (z is x with 21 significant bits) and small = (z - x)(z + x) + R/S.
 */
function scaledErfcTailParts(x: number): { big: number; small: number } {
  const s = 1 / (x * x);
  const ratio = x < 1 / 0.35 ? poly(RA, s) / poly(SA, s) : poly(RB, s) / poly(SB, s);
  const z = truncateLowWord(x);
  return { big: -z * z - 0.5625, small: (z - x) * (z + x) + ratio };
}

/** erfc(x) = 1 - erf(x), accurate to about one ulp (fdlibm). */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x === Infinity) return 0;
  if (x === -Infinity) return 2;
  const ax = Math.abs(x);
  const negative = x < 0;
  if (ax < 0.84375) {
    let t: number;
    if (ax < 2 ** -56) t = ax;
    else {
      const z = ax * ax;
      const y = poly(PP, z) / poly(QQ, z);
      t = ax < 0.25 ? ax + ax * y : 0.5 + (ax * y + (ax - 0.5));
    }
    return negative ? 1 + t : 1 - t;
  }
  if (ax < 1.25) {
    const s = ax - 1;
    const pq = poly(PA, s) / poly(QA, s);
    return negative ? 1 + ERX + pq : 1 - ERX - pq;
  }
  if (ax < 28) {
    if (negative && ax > 6) return 2;
    const { big, small } = scaledErfcTailParts(ax);
    const r = (Math.exp(big) * Math.exp(small)) / ax;
    return negative ? 2 - r : r;
  }
  return negative ? 2 : 0;
}

const HALF_LOG_PI = 0.5 * Math.log(Math.PI);

/**
 * log(erfc(x)) for every real x, finite where erfc(x) underflows (x > ~26.5).
 * Relative accuracy about 1e-15 (fdlibm below 28, a 7-term asymptotic series above, whose
 * omitted remainder is below 1e-16 there).
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x === Infinity) return -Infinity;
  if (x < 1.25) return Math.log(erfc(x));
  if (x < 28) {
    const { big, small } = scaledErfcTailParts(x);
    return big + small - Math.log(x);
  }
  // erfc(x) ~ exp(-x^2)/(x sqrt(pi)) * sum_n (-1)^n (2n-1)!! / (2x^2)^n
  const inv = 1 / (2 * x * x);
  let term = 1;
  let sum = 0;
  for (let n = 1; n <= 7; n++) {
    term *= -(2 * n - 1) * inv;
    sum += term;
  }
  return -x * x - Math.log(x) - HALF_LOG_PI + Math.log1p(sum);
}
