import * as tf from '@tensorflow/tfjs';
import type { AdaptedModel } from '../adapters/adapted-model.js';
import type { LocalDataset } from './dataset.js';
import { datasetSize, gatherBatch } from './dataset.js';

export interface Evaluation {
  /** Mean softmax cross-entropy (nats per example). */
  loss: number;
  /** Fraction of examples whose arg-max class is the label, in [0, 1]. */
  accuracy: number;
  examples: number;
}

/** Loss and accuracy of the adapted model on a dataset, in batches of `batchSize` (default 256). */
export function evaluateModel(model: AdaptedModel, data: LocalDataset, batchSize = 256): Evaluation {
  const n = datasetSize(data);
  if (n === 0) return { loss: Number.NaN, accuracy: Number.NaN, examples: 0 };
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < n; start += batchSize) {
    const indices = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
    const [loss, hits] = tf.tidy(() => {
      const { x, y } = gatherBatch(data, indices, model.outputUnits);
      const logits = model.logits(x);
      const perExample = tf.losses.softmaxCrossEntropy(y, logits, undefined, undefined, tf.Reduction.NONE);
      const right = tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1));
      return [tf.sum(perExample).dataSync()[0] ?? 0, tf.sum(tf.cast(right, 'float32')).dataSync()[0] ?? 0];
    });
    lossSum += loss;
    correct += hits;
  }
  return { loss: lossSum / n, accuracy: correct / n, examples: n };
}
