// "A little is enough" (Baruch, Baruch & Goldberg, NeurIPS 2019, "A Little Is Enough:
// Circumventing Defenses For Distributed Learning"), Algorithm 1. The colluding attackers all send
// the same vector: per coordinate, the mean of the workers' honest updates moved by z_max of their
// standard deviations, small enough that median- and distance-based rules keep it, large enough to
// slow or stop convergence.
import { FlotillaError, normalQuantile } from '@flotilla/protocol';
import type { NamedTensors } from './attacks.js';

/**
 * z_max of Algorithm 1 for n workers of which m are attackers: s = ⌊n/2 + 1⌋ − m honest workers
 * must be won over, and z_max = Φ⁻¹((n − s) / n), the largest z for which that many honest values
 * of a coordinate lie farther from the mean than the attackers' value. E.g. n = 10: m = 1 gives 0
 * (the attacker sends the mean itself), m = 2 gives 0.2533, m = 3 gives 0.5244.
 *
 * When the attackers are a majority (s < 1) the paper's formula leaves (n − s)/n >= 1; s is then
 * taken as 1, the strongest value the formula gives (Φ⁻¹((n − 1)/n)).
 */
export function alieZMax(workers: number, attackers: number): number {
  if (!Number.isInteger(workers) || workers < 2)
    throw new FlotillaError('BAD_REQUEST', `"a little is enough" needs at least 2 workers, got ${workers}`);
  if (!Number.isInteger(attackers) || attackers < 1 || attackers > workers)
    throw new FlotillaError('BAD_REQUEST', `attackers must be in 1..${workers}, got ${attackers}`);
  const supporters = Math.max(1, Math.floor(workers / 2 + 1) - attackers);
  return normalQuantile((workers - supporters) / workers);
}

/** Options of {@link littleIsEnough}. */
export interface LittleIsEnoughOptions {
  /**
   * The updates the workers would have sent honestly this round (the attackers' own included):
   * the attackers' estimate of the honest distribution. At least one.
   */
  honest: readonly NamedTensors[];
  /** Workers n taking part in the round. */
  workers: number;
  /** Attackers m among them. */
  attackers: number;
  /** Override z_max (e.g. a stronger attack); default {@link alieZMax}(n, m). */
  z?: number;
}

/**
 * The crafted update μ − z·σ, per coordinate, where μ and σ are the mean and the sample standard
 * deviation (n − 1 denominator; 0 for a single update) of `honest`.
 */
export function littleIsEnough(options: LittleIsEnoughOptions): NamedTensors {
  const { honest } = options;
  const first = honest[0];
  if (first === undefined) throw new FlotillaError('BAD_REQUEST', 'no honest updates to estimate from');
  const z = options.z ?? alieZMax(options.workers, options.attackers);
  const n = honest.length;
  const out: NamedTensors = new Map();
  for (const [name, values] of first) {
    const columns = honest.map((u) => {
      const t = u.get(name);
      if (t?.length !== values.length)
        throw new FlotillaError('SHAPE_MISMATCH', `honest updates differ in tensor ${name}`);
      return t;
    });
    const crafted = new Float32Array(values.length);
    for (let j = 0; j < values.length; j++) {
      let sum = 0;
      for (const c of columns) sum += c[j] ?? 0;
      const mean = sum / n;
      let squares = 0;
      for (const c of columns) squares += ((c[j] ?? 0) - mean) ** 2;
      const std = n > 1 ? Math.sqrt(squares / (n - 1)) : 0;
      crafted[j] = mean - z * std;
    }
    out.set(name, crafted);
  }
  return out;
}
