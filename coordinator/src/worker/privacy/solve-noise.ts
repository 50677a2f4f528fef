import { DEFAULT_ORDERS, FlotillaError, epsilonFromRdp, type RdpConversion } from '@flotilla/protocol';
import { computeRdp } from './rdp.js';

/** Options of {@link solveNoiseMultiplier}. */
export interface SolveNoiseMultiplierOptions {
  /** ε to reach after `steps` rounds (nats, > 0). */
  targetEpsilon: number;
  /** Sampling rate q in (0, 1]. */
  q: number;
  /** Rounds (integer >= 1). */
  steps: number;
  /** δ in (0, 1). */
  delta: number;
  /** Conversion rule. Default `'improved'`. */
  conversion?: RdpConversion;
  /** Rényi orders. Default {@link DEFAULT_ORDERS}. */
  orders?: readonly number[];
  /** Bisection stops when (hi − lo) <= tolerance · hi. Default 1e-6 (relative). */
  tolerance?: number;
  /** Largest noise multiplier tried before giving up. Default 1e4. */
  maxNoiseMultiplier?: number;
}

/**
 * The smallest noise multiplier z (to within `tolerance`, relative) whose ε after `steps` rounds
 * is at most `targetEpsilon`. ε is decreasing in z, so bisection on [lo, hi] with ε(lo) > target
 * >= ε(hi) converges; the returned value is `hi`, the conservative end: ε(z) <= targetEpsilon
 * always holds for the returned z, and z is at most `tolerance` (relative) above the exact root.
 */
export function solveNoiseMultiplier(options: SolveNoiseMultiplierOptions): number {
  const { targetEpsilon, q, steps, delta } = options;
  const conversion = options.conversion ?? 'improved';
  const orders = options.orders ?? DEFAULT_ORDERS;
  const tolerance = options.tolerance ?? 1e-6;
  const maxZ = options.maxNoiseMultiplier ?? 1e4;
  if (!(targetEpsilon > 0))
    throw new FlotillaError('BAD_REQUEST', `targetEpsilon must be > 0, got ${targetEpsilon}`);
  if (!(q > 0 && q <= 1)) throw new FlotillaError('BAD_REQUEST', `q must be in (0, 1], got ${q}`);
  if (!Number.isInteger(steps) || steps < 1)
    throw new FlotillaError('BAD_REQUEST', `steps must be an integer >= 1, got ${steps}`);
  if (!(tolerance > 0 && tolerance < 1))
    throw new FlotillaError('BAD_REQUEST', `tolerance must be in (0, 1), got ${tolerance}`);

  const epsilonAt = (z: number): number =>
    epsilonFromRdp({ orders, rdp: computeRdp({ q, noiseMultiplier: z, steps, orders }), delta, conversion })
      .epsilon;

  // Bracket: ε(0) = ∞ > target; double hi until ε(hi) <= target.
  let lo = 0;
  let hi = 1;
  while (epsilonAt(hi) > targetEpsilon) {
    lo = hi;
    hi *= 2;
    if (hi > maxZ) {
      throw new FlotillaError(
        'BAD_REQUEST',
        `no noise multiplier <= ${maxZ} reaches epsilon ${targetEpsilon} in ${steps} steps`,
      );
    }
  }
  // Each halving is one evaluation; 200 is far beyond what any tolerance >= 1e-15 needs.
  for (let iteration = 0; iteration < 200 && hi - lo > tolerance * hi; iteration++) {
    const mid = (lo + hi) / 2;
    if (epsilonAt(mid) > targetEpsilon) lo = mid;
    else hi = mid;
  }
  return hi;
}
