import { at } from '../checked-index.js';
import { FlotillaError } from '../errors.js';

/**
 * RDP → (ε, δ) conversions.
 *
 * - `improved` (Balle et al. 2020, "Hypothesis testing interpretations and Rényi differential
 *   privacy", Thm 21; what Opacus and TF Privacy use now):
 *   ε = min_α [ rdp(α) + log1p(−1/α) − (log δ + log α) / (α − 1) ].
 *   As in TF Privacy: orders α ≤ 1.01 are skipped (the bound is unstable near 1); an order whose
 *   RDP already gives δ ≥ sqrt(1 − exp(−rdp)) (the KL bound, rdp read as a KL divergence) yields
 *   ε = 0; and the result is clamped to ε ≥ 0.
 * - `classic` (Mironov 2017, Prop. 3): ε = min_α [ rdp(α) + log(1/δ) / (α − 1) ].
 */
export type RdpConversion = 'improved' | 'classic';

/** Options of {@link epsilonFromRdp}. */
export interface EpsilonFromRdpOptions {
  /** Rényi orders α >= 1, same length as `rdp`. */
  orders: readonly number[];
  /** Accumulated RDP at each order (nats, >= 0; Infinity allowed). */
  rdp: readonly number[];
  /** Target δ in (0, 1). */
  delta: number;
  /** Conversion rule. Default `'improved'`. */
  conversion?: RdpConversion;
}

/** Options of {@link deltaFromRdp}. */
export interface DeltaFromRdpOptions {
  orders: readonly number[];
  rdp: readonly number[];
  /** Target ε >= 0 (nats). */
  epsilon: number;
  /** Conversion rule. Default `'improved'`. */
  conversion?: RdpConversion;
}

/** The best bound and the order that achieved it. `order` is NaN when every order gave ∞. */
export interface PrivacyBound {
  epsilon: number;
  order: number;
}

function checkCurve(orders: readonly number[], rdp: readonly number[]): void {
  if (orders.length !== rdp.length || orders.length === 0) {
    throw new FlotillaError(
      'BAD_REQUEST',
      `orders (${orders.length}) and rdp (${rdp.length}) must be non-empty and of equal length`,
    );
  }
  for (let k = 0; k < orders.length; k++) {
    const a = at(orders, k);
    const r = at(rdp, k);
    if (!(a >= 1)) throw new FlotillaError('BAD_REQUEST', `Rényi order must be >= 1, got ${a}`);
    if (!(r >= 0)) throw new FlotillaError('BAD_REQUEST', `RDP must be >= 0, got ${r}`);
  }
}

function epsilonAtOrder(a: number, r: number, delta: number, conversion: RdpConversion): number {
  if (r === Infinity || a === Infinity) return Infinity;
  if (conversion === 'classic') return a > 1 ? r + Math.log(1 / delta) / (a - 1) : Infinity;
  if (delta * delta + Math.expm1(-r) > 0) return 0;
  if (a > 1.01) return r + Math.log1p(-1 / a) - (Math.log(delta) + Math.log(a)) / (a - 1);
  return Infinity;
}

/** Smallest ε over the orders for a given δ (nats). The first order wins ties. */
export function epsilonFromRdp(options: EpsilonFromRdpOptions): PrivacyBound {
  const { orders, rdp, delta } = options;
  const conversion = options.conversion ?? 'improved';
  checkCurve(orders, rdp);
  if (!(delta > 0 && delta < 1))
    throw new FlotillaError('BAD_REQUEST', `delta must be in (0, 1), got ${delta}`);
  let best: PrivacyBound = { epsilon: Infinity, order: Number.NaN };
  for (let k = 0; k < orders.length; k++) {
    const a = at(orders, k);
    const eps = epsilonAtOrder(a, at(rdp, k), delta, conversion);
    if (eps < best.epsilon) best = { epsilon: eps, order: a };
  }
  return { epsilon: Math.max(0, best.epsilon), order: best.order };
}

function logDeltaAtOrder(a: number, r: number, epsilon: number, conversion: RdpConversion): number {
  // δ <= 1 always holds: an order with no finite bound contributes the trivial log δ = 0.
  if (r === Infinity || a === Infinity) return 0;
  if (conversion === 'classic') return a > 1 ? (a - 1) * (r - epsilon) : Infinity;
  // The KL bound δ <= sqrt(1 − exp(−rdp)), then the Balle et al. bound for α > 1.01.
  let logDelta = r === 0 ? -Infinity : 0.5 * Math.log1p(-Math.exp(-r));
  if (a > 1.01) {
    logDelta = Math.min(logDelta, (a - 1) * (r - epsilon + Math.log1p(-1 / a)) - Math.log(a));
  }
  return logDelta;
}

/** Smallest δ over the orders for a given ε (the inverse query), capped at 1. */
export function deltaFromRdp(options: DeltaFromRdpOptions): { delta: number; order: number } {
  const { orders, rdp, epsilon } = options;
  const conversion = options.conversion ?? 'improved';
  checkCurve(orders, rdp);
  if (!(epsilon >= 0)) throw new FlotillaError('BAD_REQUEST', `epsilon must be >= 0, got ${epsilon}`);
  let bestLog = Infinity;
  let bestOrder = Number.NaN;
  for (let k = 0; k < orders.length; k++) {
    const a = at(orders, k);
    const logDelta = logDeltaAtOrder(a, at(rdp, k), epsilon, conversion);
    if (logDelta < bestLog) {
      bestLog = logDelta;
      bestOrder = a;
    }
  }
  return { delta: Math.min(Math.exp(bestLog), 1), order: bestOrder };
}
