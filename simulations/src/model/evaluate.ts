import * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../data/dataset.js';
import { modelInputShape } from './input-shape.js';

/** A model, or a function from inputs [n, dim] to class probabilities [n, classes]. */
export type Predictor = tf.LayersModel | ((x: tf.Tensor2D) => tf.Tensor);

/** Accuracy in [0, 1] and mean cross-entropy (nats per example) of a classifier on a dataset. */
export interface EvaluationResult {
  accuracy: number;
  loss: number;
  examples: number;
}

/** Probabilities below this are clamped before the log, so one confident mistake stays finite. */
const MIN_PROBABILITY = 1e-7;

/**
 * Evaluates `predictor` on `data` in batches of `batchSize` (default 512). A model gets the
 * examples in the shape it takes (e.g. [n, 28, 28, 1] for a CNN), a function [n, dim].
 */
export function evaluate(
  predictor: Predictor,
  data: Dataset,
  options: { batchSize?: number } = {},
): EvaluationResult {
  const batchSize = options.batchSize ?? 512;
  const predict =
    typeof predictor === 'function'
      ? (x: tf.Tensor) => predictor(x as tf.Tensor2D)
      : (x: tf.Tensor) => predictor.predict(x) as tf.Tensor;
  const inputShape = typeof predictor === 'function' ? [data.dim] : modelInputShape(predictor, data.dim);
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < data.n; start += batchSize) {
    const count = Math.min(batchSize, data.n - start);
    const probabilities = tf.tidy(() => {
      const x = tf.tensor(data.xs.subarray(start * data.dim, (start + count) * data.dim), [
        count,
        ...inputShape,
      ]);
      return predict(x).dataSync() as Float32Array;
    });
    const classes = probabilities.length / count;
    for (let row = 0; row < count; row += 1) {
      const label = data.ys[start + row] ?? 0;
      let best = 0;
      let bestP = -Infinity;
      for (let c = 0; c < classes; c += 1) {
        const p = probabilities[row * classes + c] ?? 0;
        if (p > bestP) {
          bestP = p;
          best = c;
        }
      }
      if (best === label) correct += 1;
      lossSum -= Math.log(Math.max(MIN_PROBABILITY, probabilities[row * classes + label] ?? 0));
    }
  }
  return {
    accuracy: data.n > 0 ? correct / data.n : Number.NaN,
    loss: data.n > 0 ? lossSum / data.n : Number.NaN,
    examples: data.n,
  };
}
