import * as tf from '@tensorflow/tfjs';
import { createRng } from '../model/seeded-rng.js';
import type { LocalDataset } from './dataset.js';

/**
 * A linearly separable 3-class task in `features` dimensions: class k's examples are centred at
 * 2·e_k (plus unit-variance noise), so a linear read-out separates them.
 */
export function separableTask(options: { n: number; features: number; seed: number }): LocalDataset {
  const { n, features } = options;
  const rng = createRng(options.seed);
  const gaussian = (): number => {
    const u = Math.max(rng.nextFloat(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextFloat());
  };
  const xs = new Float32Array(n * features);
  const ys = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = i % 3;
    ys[i] = label;
    for (let j = 0; j < features; j++) xs[i * features + j] = 0.5 * gaussian() + (j === label ? 2 : 0);
  }
  return { xs, ys, featureShape: [features] };
}

/** The same examples with every label moved to the next class (a deliberately harmful task). */
export function flippedLabels(data: LocalDataset): LocalDataset {
  return { ...data, ys: Int32Array.from(data.ys, (y) => (y + 1) % 3) };
}

/** A small MLP base: features → 16 (relu, 'hidden') → 3 (softmax, 'head'), seeded weights. */
export function tinyBase(features: number, seed = 1): tf.LayersModel {
  const model = tf.sequential();
  model.add(
    tf.layers.dense({
      inputShape: [features],
      units: 16,
      activation: 'relu',
      name: 'hidden',
      kernelInitializer: tf.initializers.glorotUniform({ seed }),
    }),
  );
  model.add(
    tf.layers.dense({
      units: 3,
      activation: 'softmax',
      name: 'head',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
    }),
  );
  return model;
}
