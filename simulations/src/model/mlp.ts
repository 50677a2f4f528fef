import * as tf from '@tensorflow/tfjs';
import { FlotillaError } from '@flotilla/protocol';
import type { Dataset } from '../data/dataset.js';
import type { Rng } from '../rng/random.js';
import { modelInputShape } from './input-shape.js';

/** Options for {@link createMlp}. */
export interface MlpOptions {
  /** Features per example. Default 784. */
  inputDim?: number;
  /** Units of the ReLU layer named 'hidden'. Default 128. */
  hidden?: number;
  /** Units of the softmax layer named 'out'. Default 10. */
  numClasses?: number;
  /** Seed of the Glorot-uniform kernel initialisers (biases start at 0). */
  seed: number;
}

/**
 * The base model: input [n, inputDim] -> dense 'hidden' (ReLU) -> dense 'out' (softmax), the
 * layer names adapters target. Kernels are [in, out] (tfjs layout).
 */
export function createMlp(options: MlpOptions): tf.Sequential {
  // A fixed model name: tfjs otherwise numbers models per process ('sequential_3'), and the name
  // is part of the serialized topology, hence of the bundle's content address.
  const model = tf.sequential({ name: 'flotilla_mlp' });
  model.add(
    tf.layers.dense({
      name: 'hidden',
      inputShape: [options.inputDim ?? 784],
      units: options.hidden ?? 128,
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: options.seed }),
      biasInitializer: 'zeros',
    }),
  );
  model.add(
    tf.layers.dense({
      name: 'out',
      units: options.numClasses ?? 10,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: options.seed + 1 }),
      biasInitializer: 'zeros',
    }),
  );
  return model;
}

/** Options for {@link trainFullModel}. */
export interface TrainFullModelOptions {
  model: tf.LayersModel;
  data: Dataset;
  /** Passes over the data. */
  epochs: number;
  /** Examples per optimizer step. Default 64. */
  batchSize?: number;
  /** Adam learning rate. Default 0.001. */
  learningRate?: number;
  /** Decides the example order of every epoch (the only randomness in training). */
  rng: Rng;
}

/**
 * Trains every weight with Adam on softmax cross-entropy, in batches whose order comes from
 * `rng` only (no tfjs shuffling), so the result is a function of the inputs on a given backend.
 * Returns the optimizer steps taken and the mean loss of the last epoch.
 */
export async function trainFullModel(
  options: TrainFullModelOptions,
): Promise<{ steps: number; lastEpochLoss: number }> {
  const { model, data, epochs, rng } = options;
  const batchSize = options.batchSize ?? 64;
  if (data.n === 0) throw new FlotillaError('BAD_REQUEST', 'no training examples');
  model.compile({ optimizer: tf.train.adam(options.learningRate ?? 0.001), loss: 'categoricalCrossentropy' });
  const inputShape = modelInputShape(model, data.dim);
  let steps = 0;
  let lastEpochLoss = Number.NaN;
  for (let epoch = 0; epoch < epochs; epoch += 1) {
    const order = rng.permutation(data.n);
    let lossSum = 0;
    let batches = 0;
    for (let start = 0; start < data.n; start += batchSize) {
      const rows = order.slice(start, start + batchSize);
      const xs = new Float32Array(rows.length * data.dim);
      const ys = new Int32Array(rows.length);
      rows.forEach((row, i) => {
        xs.set(data.xs.subarray(row * data.dim, (row + 1) * data.dim), i * data.dim);
        ys[i] = data.ys[row] ?? 0;
      });
      const x = tf.tensor(xs, [rows.length, ...inputShape]);
      const y = tf.tidy(() => tf.oneHot(tf.tensor1d(ys, 'int32'), data.numClasses));
      const loss = await model.trainOnBatch(x, y);
      tf.dispose([x, y]);
      lossSum += Array.isArray(loss) ? (loss[0] ?? Number.NaN) : loss;
      batches += 1;
      steps += 1;
    }
    lastEpochLoss = lossSum / batches;
  }
  return { steps, lastEpochLoss };
}
