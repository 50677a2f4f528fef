import { FlotillaError } from '@flotilla/protocol';
import type { Rng } from '../rng/random.js';
import type { Dataset } from './dataset.js';

/** Options for {@link makeSyntheticTask}. */
export interface SyntheticOptions {
  rng: Rng;
  /** Examples to draw. */
  n: number;
  /** Feature dimension. Default 32. */
  dim?: number;
  /** Classes. Default 10. */
  numClasses?: number;
  /** L2 norm of each class mean; larger is easier. Default 3. */
  separation?: number;
  /** Std of the isotropic Gaussian noise around a class mean. Default 1. */
  noiseStd?: number;
  /**
   * Domain drift in [0, 1]: class means move along a great circle from their base directions
   * (drift 0) to fresh random directions (drift 1), μ_c(d) = cos(dπ/2)·μ_c + sin(dπ/2)·ν_c.
   * Default 0.
   */
  drift?: number;
}

function randomDirection(rng: Rng, dim: number, norm: number): Float64Array {
  const v = new Float64Array(dim);
  let sq = 0;
  for (let i = 0; i < dim; i += 1) {
    const x = rng.normal();
    v[i] = x;
    sq += x * x;
  }
  const scale = norm / Math.sqrt(sq);
  return v.map((x) => x * scale);
}

/**
 * Gaussian class clusters. The class means depend only on the stream `rng.fork('means')`, so
 * two calls with the same rng seed but different `drift` share the same base and target means:
 * drift is a controlled, continuous domain shift. Labels are balanced (round-robin), examples are
 * drawn from `rng.fork('examples')`.
 */
export function makeSyntheticTask(options: SyntheticOptions): Dataset {
  const dim = options.dim ?? 32;
  const numClasses = options.numClasses ?? 10;
  const separation = options.separation ?? 3;
  const noiseStd = options.noiseStd ?? 1;
  const drift = options.drift ?? 0;
  if (drift < 0 || drift > 1) throw new FlotillaError('BAD_REQUEST', `drift must be in [0, 1], got ${drift}`);
  if (!Number.isInteger(options.n) || options.n < 1) throw new FlotillaError('BAD_REQUEST', 'n must be >= 1');
  const meanRng = options.rng.fork('means');
  const base = Array.from({ length: numClasses }, () => randomDirection(meanRng, dim, separation));
  const target = Array.from({ length: numClasses }, () => randomDirection(meanRng, dim, separation));
  const angle = (drift * Math.PI) / 2;
  const means = base.map((mu, c) => {
    const nu = target[c] ?? mu;
    return mu.map((value, i) => Math.cos(angle) * value + Math.sin(angle) * (nu[i] ?? 0));
  });
  const exampleRng = options.rng.fork('examples');
  const xs = new Float32Array(options.n * dim);
  const ys = new Int32Array(options.n);
  for (let row = 0; row < options.n; row += 1) {
    const label = row % numClasses;
    ys[row] = label;
    const mean = means[label] ?? new Float64Array(dim);
    for (let i = 0; i < dim; i += 1) xs[row * dim + i] = (mean[i] ?? 0) + exampleRng.normal(0, noiseStd);
  }
  return { xs, ys, n: options.n, dim, numClasses };
}
