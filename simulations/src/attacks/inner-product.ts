// Inner-product manipulation (Xie, Koyejo & Gupta, UAI 2020, "Fall of Empires: Breaking
// Byzantine-tolerant SGD by Inner Product Manipulation"): the colluding attackers all send
// −ε times the mean of the honest updates. Averaged in, it makes the aggregate's inner product
// with the true descent direction small or negative; a small ε keeps the vector close enough to
// the honest ones that distance-based rules (Krum) and the median can still pick it.
import { FlotillaError } from '@flotilla/protocol';
import type { NamedTensors } from './attacks.js';

/** ε of {@link innerProductManipulation} when the scenario gives none. */
export const DEFAULT_IPM_EPSILON = 0.1;

/** Options of {@link innerProductManipulation}. */
export interface InnerProductOptions {
  /** The workers' honest updates this round (the attackers' estimate of the mean). At least one. */
  honest: readonly NamedTensors[];
  /** ε > 0. Default {@link DEFAULT_IPM_EPSILON}. */
  epsilon?: number;
}

/** The crafted update −ε · mean(honest), per coordinate. */
export function innerProductManipulation(options: InnerProductOptions): NamedTensors {
  const { honest } = options;
  const epsilon = options.epsilon ?? DEFAULT_IPM_EPSILON;
  if (!(epsilon > 0)) throw new FlotillaError('BAD_REQUEST', `inner-product ε must be > 0, got ${epsilon}`);
  const first = honest[0];
  if (first === undefined) throw new FlotillaError('BAD_REQUEST', 'no honest updates to estimate from');
  const out: NamedTensors = new Map();
  for (const [name, values] of first) {
    const sum = new Float64Array(values.length);
    for (const update of honest) {
      const t = update.get(name);
      if (t?.length !== values.length)
        throw new FlotillaError('SHAPE_MISMATCH', `honest updates differ in tensor ${name}`);
      for (let j = 0; j < t.length; j++) sum[j] = (sum[j] ?? 0) + (t[j] ?? 0);
    }
    out.set(
      name,
      Float32Array.from(sum, (s) => (-epsilon * s) / honest.length),
    );
  }
  return out;
}
