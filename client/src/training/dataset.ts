import { FlotillaError } from '@flotilla/protocol';
import * as tf from '@tensorflow/tfjs';

/**
 * Labelled examples kept as flat typed arrays: `xs` holds n examples of `featureShape` each,
 * row-major; `ys` holds n class indices (integers, also when given as a Float32Array).
 */
export interface LocalDataset {
  xs: Float32Array;
  ys: Int32Array | Float32Array;
  /** Shape of one example, e.g. [784] or [28, 28]. */
  featureShape: number[];
}

export function featureSize(featureShape: readonly number[]): number {
  return featureShape.reduce((p, d) => p * d, 1);
}

/** Number of examples; throws BAD_REQUEST when xs and ys disagree. */
export function datasetSize(data: LocalDataset): number {
  const size = featureSize(data.featureShape);
  if (size <= 0 || data.xs.length % size !== 0 || data.xs.length / size !== data.ys.length) {
    throw new FlotillaError(
      'BAD_REQUEST',
      `dataset has ${data.xs.length} feature values and ${data.ys.length} labels for feature shape [${data.featureShape.join(', ')}]`,
    );
  }
  return data.ys.length;
}

/** The examples at `indices` as tensors: x [k, ...featureShape], one-hot y [k, classes]. */
export function gatherBatch(
  data: LocalDataset,
  indices: ArrayLike<number>,
  numClasses: number,
): { x: tf.Tensor; y: tf.Tensor2D } {
  const size = featureSize(data.featureShape);
  const xs = new Float32Array(indices.length * size);
  const ys = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const row = indices[i] ?? 0;
    xs.set(data.xs.subarray(row * size, (row + 1) * size), i * size);
    const label = data.ys[row] ?? -1;
    if (!Number.isInteger(label) || label < 0 || label >= numClasses) {
      throw new FlotillaError(
        'BAD_REQUEST',
        `label ${label} at example ${row} is not a class index in [0, ${numClasses})`,
      );
    }
    ys[i] = label;
  }
  return tf.tidy(() => ({
    x: tf.tensor(xs, [indices.length, ...data.featureShape]),
    y: tf.oneHot(tf.tensor1d(ys, 'int32'), numClasses).toFloat() as tf.Tensor2D,
  }));
}

/** A subset of a dataset, copied. */
export function selectExamples(data: LocalDataset, indices: ArrayLike<number>): LocalDataset {
  const size = featureSize(data.featureShape);
  const xs = new Float32Array(indices.length * size);
  const ys =
    data.ys instanceof Int32Array ? new Int32Array(indices.length) : new Float32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const row = indices[i] ?? 0;
    xs.set(data.xs.subarray(row * size, (row + 1) * size), i * size);
    ys[i] = data.ys[row] ?? 0;
  }
  return { xs, ys, featureShape: [...data.featureShape] };
}

/** Two datasets of the same feature shape, one after the other. */
export function concatDatasets(a: LocalDataset, b: LocalDataset): LocalDataset {
  if (featureSize(a.featureShape) !== featureSize(b.featureShape)) {
    throw new FlotillaError('SHAPE_MISMATCH', 'cannot concatenate datasets with different feature shapes');
  }
  const xs = new Float32Array(a.xs.length + b.xs.length);
  xs.set(a.xs, 0);
  xs.set(b.xs, a.xs.length);
  const ys = new Float32Array(a.ys.length + b.ys.length);
  ys.set(a.ys, 0);
  ys.set(b.ys, a.ys.length);
  return { xs, ys, featureShape: [...a.featureShape] };
}
