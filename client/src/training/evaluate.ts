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
  /**
   * Per example, in the dataset's order: 1 if the arg-max class is the label, else 0. Lets two
   * adapters be compared on the same examples (a paired test, as the worker's drift audit does).
   */
  correct: Uint8Array;
}

/** Loss and accuracy of the adapted model on a dataset, in batches of `batchSize` (default 256). */
export function evaluateModel(model: AdaptedModel, data: LocalDataset, batchSize = 256): Evaluation {
  const n = datasetSize(data);
  if (n === 0) return { loss: Number.NaN, accuracy: Number.NaN, examples: 0, correct: new Uint8Array(0) };
  let lossSum = 0;
  let correct = 0;
  const perExample = new Uint8Array(n);
  for (let start = 0; start < n; start += batchSize) {
    const indices = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
    const [loss, right] = tf.tidy(() => {
      const { x, y } = gatherBatch(data, indices, model.outputUnits);
      const logits = model.logits(x);
      const losses = tf.losses.softmaxCrossEntropy(y, logits, undefined, undefined, tf.Reduction.NONE);
      const hits = tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'int32');
      return [tf.sum(losses).dataSync()[0] ?? 0, hits.dataSync()] as const;
    });
    lossSum += loss;
    for (let i = 0; i < right.length; i++) {
      const hit = right[i] === 1 ? 1 : 0;
      perExample[start + i] = hit;
      correct += hit;
    }
  }
  return { loss: lossSum / n, accuracy: correct / n, examples: n, correct: perExample };
}
