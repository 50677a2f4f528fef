import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import { initBackend } from '../backend/backend.js';
import { assertDataFitsModel, modelIo } from './data-fit.js';

beforeAll(() => initBackend({ prefer: 'cpu', logger: () => undefined }));

const fault = (run: () => void): FlotillaError | null => {
  try {
    run();
    return null;
  } catch (error) {
    return error instanceof FlotillaError ? error : null;
  }
};

describe('modelIo / assertDataFitsModel', () => {
  it('reads a dense classifier as [4] in, 3 classes, and accepts data of that shape', () => {
    const model = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [4], units: 3, activation: 'softmax' })],
    });
    const io = modelIo(model);
    expect(io).toEqual({ featureShape: [4], classes: 3 });
    const data = { xs: new Float32Array(8), ys: Int32Array.from([0, 2]), featureShape: [4] };
    expect(fault(() => assertDataFitsModel(data, io, 'data.train'))).toBeNull();
    model.dispose();
  });

  it('names the split and both shapes when featureShape differs (rank or width)', () => {
    const io = { featureShape: [28, 28], classes: 10 };
    const flat = { xs: new Float32Array(784), ys: Int32Array.from([1]), featureShape: [784] };
    const error = fault(() => assertDataFitsModel(flat, io, 'data.holdout'));
    expect(error?.code).toBe('BAD_REQUEST');
    expect(error?.message).toBe(
      "data.holdout.featureShape is [784] but the task's base model takes examples of shape [28, 28]",
    );
    const narrow = { xs: new Float32Array(28 * 27), ys: Int32Array.from([1]), featureShape: [28, 27] };
    expect(fault(() => assertDataFitsModel(narrow, io, 'data.train'))?.message).toContain('[28, 27]');
  });

  it('refuses labels that are not class indices of the model output, and xs/ys that disagree', () => {
    const io = { featureShape: [2], classes: 3 };
    const outOfRange = { xs: new Float32Array(4), ys: Int32Array.from([0, 3]), featureShape: [2] };
    expect(fault(() => assertDataFitsModel(outOfRange, io, 'data.train'))?.message).toBe(
      "data.train.ys[1] is 3, not a class index of the base model's 3 outputs [0, 3)",
    );
    const fractional = { xs: new Float32Array(2), ys: Float32Array.from([0.5]), featureShape: [2] };
    expect(fault(() => assertDataFitsModel(fractional, io, 'data.train'))?.code).toBe('BAD_REQUEST');
    const ragged = { xs: new Float32Array(5), ys: Int32Array.from([0, 1]), featureShape: [2] };
    expect(fault(() => assertDataFitsModel(ragged, io, 'data.train'))?.message).toContain(
      '5 feature values and 2 labels',
    );
  });

  it('treats an unknown model dimension as matching any size', () => {
    const io = { featureShape: [-1, 8], classes: 2 };
    const data = { xs: new Float32Array(24), ys: Int32Array.from([1]), featureShape: [3, 8] };
    expect(fault(() => assertDataFitsModel(data, io, 'data.train'))).toBeNull();
  });
});
