import type { LocalDataset } from './dataset.js';

export interface SyntheticClustersOptions {
  /** Number of examples. */
  n: number;
  /** Values per example; at least `classes`, since class c is centred on 2·e_c. */
  features: number;
  /** Number of classes. Default 3. */
  classes?: number;
  /** Seed of the generator: the same seed gives the same examples on every platform. */
  seed: number;
  /** Draws an example's class from `random` (uniform on [0, 1)). Default: uniform over the classes. */
  label?: (random: () => number) => number;
}

/**
 * A toy classification task for trying a device without data of its own: class c is centred on
 * 2·e_c, each feature with uniform noise on [-0.5, 0.5), so a linear read-out separates the
 * classes. Deterministic from `seed` (a 32-bit linear congruential generator, Numerical Recipes'
 * constants), so a page, a Node process and a test draw the very same examples.
 */
export function syntheticClusters(options: SyntheticClustersOptions): LocalDataset {
  const { n, features } = options;
  const classes = options.classes ?? 3;
  let state = options.seed >>> 0;
  const random = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const label = options.label ?? ((r: () => number) => Math.floor(r() * classes));
  const xs = new Float32Array(n * features);
  const ys = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = label(random);
    ys[i] = y;
    for (let f = 0; f < features; f++) xs[i * features + f] = (f === y ? 2 : 0) + (random() - 0.5);
  }
  return { xs, ys, featureShape: [features] };
}
