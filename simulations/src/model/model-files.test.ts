import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { createCharRnn } from './char-rnn.js';
import { createCnn } from './cnn.js';
import { loadModelFiles, saveModelFiles } from './model-files.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-model-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const dense = (name: string, units: number, activation: string) => ({
  class_name: 'Dense',
  config: {
    name,
    trainable: true,
    dtype: 'float32',
    units,
    activation,
    use_bias: true,
    kernel_initializer: { class_name: 'Zeros', config: {} },
    bias_initializer: { class_name: 'Zeros', config: {} },
    kernel_regularizer: null,
    bias_regularizer: null,
    activity_regularizer: null,
    kernel_constraint: null,
    bias_constraint: null,
  },
});

describe('tfjs model files', () => {
  it('load a Keras-converted model.json whose weights span two shards, with the weights it names', async () => {
    // What tensorflowjs_converter writes for Sequential([Input(3), Dense(2, relu), Dense(2, softmax)]).
    const modelJson = {
      format: 'layers-model',
      generatedBy: 'keras v2.15.0',
      convertedBy: 'TensorFlow.js Converter v4.17.0',
      modelTopology: {
        keras_version: '2.15.0',
        backend: 'tensorflow',
        model_config: {
          class_name: 'Sequential',
          config: {
            name: 'tiny',
            layers: [
              {
                class_name: 'InputLayer',
                config: {
                  batch_input_shape: [null, 3],
                  dtype: 'float32',
                  sparse: false,
                  ragged: false,
                  name: 'input',
                },
              },
              dense('hidden', 2, 'relu'),
              dense('out', 2, 'softmax'),
            ],
          },
        },
      },
      weightsManifest: [
        {
          paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'],
          weights: [
            { name: 'hidden/kernel', shape: [3, 2], dtype: 'float32' },
            { name: 'hidden/bias', shape: [2], dtype: 'float32' },
            { name: 'out/kernel', shape: [2, 2], dtype: 'float32' },
            { name: 'out/bias', shape: [2], dtype: 'float32' },
          ],
        },
      ],
    };
    const W1 = [1, -1, 0.5, 2, -0.25, 0]; // [3, 2] row-major
    const b1 = [0.1, -0.2];
    const W2 = [1, 0, -1, 1];
    const b2 = [0, 0.5];
    const all = new Float32Array([...W1, ...b1, ...W2, ...b2]);
    const bytes = new Uint8Array(all.buffer);
    const keras = join(dir, 'keras');
    mkdirSync(keras, { recursive: true });
    writeFileSync(join(keras, 'model.json'), JSON.stringify(modelJson));
    writeFileSync(join(keras, 'group1-shard1of2.bin'), bytes.subarray(0, 20));
    writeFileSync(join(keras, 'group1-shard2of2.bin'), bytes.subarray(20));
    const model = await loadModelFiles(join(keras, 'model.json'));
    expect(model.layers.map((l) => l.name)).toEqual(['input', 'hidden', 'out']);
    // By hand for x = [1, 2, 3]: h = relu(x·W1 + b1) = relu([1 + 1 - 0.75, -1 + 4 + 0] + b1) = [1.35, 2.8];
    // z = h·W2 + b2 = [1.35 - 2.8, 2.8 + 0.5] = [-1.45, 3.3]; softmax.
    const z = [-1.45, 3.3];
    const expected = z.map((v) => Math.exp(v) / (Math.exp(z[0] ?? 0) + Math.exp(z[1] ?? 0)));
    const got = tf.tidy(() => (model.predict(tf.tensor2d([[1, 2, 3]])) as tf.Tensor).dataSync());
    expect(got[0]).toBeCloseTo(expected[0] ?? Number.NaN, 6);
    expect(got[1]).toBeCloseTo(expected[1] ?? Number.NaN, 6);
    model.dispose();
  });

  it('round-trip the CNN and the char-RNN: same topology, same predictions', async () => {
    const cnn = createCnn({ seed: 5, inputShape: [12, 12, 1], hidden: 8, numClasses: 4, filters: [2, 3] });
    const rnn = createCharRnn({
      seed: 5,
      sequenceLength: 6,
      vocabularySize: 11,
      numClasses: 11,
      hidden: 5,
      cell: 'lstm',
    });
    for (const [model, input] of [
      [cnn, tf.randomUniform([3, 12, 12, 1], 0, 1, 'float32', 1)],
      [
        rnn,
        tf.tensor2d([
          [1, 2, 3, 4, 5, 6],
          [10, 0, 10, 0, 10, 0],
        ]),
      ],
    ] as const) {
      const path = await saveModelFiles(model, join(dir, model.name));
      const loaded = await loadModelFiles(path);
      expect(loaded.layers.map((l) => l.getClassName())).toEqual(model.layers.map((l) => l.getClassName()));
      const a = tf.tidy(() => (model.predict(input) as tf.Tensor).arraySync());
      const b = tf.tidy(() => (loaded.predict(input) as tf.Tensor).arraySync());
      expect(b).toEqual(a);
      loaded.dispose();
      model.dispose();
      input.dispose();
    }
  });

  it('refuse a manifest that points outside its directory, and files that are not a model', async () => {
    const evil = join(dir, 'evil');
    mkdirSync(evil, { recursive: true });
    writeFileSync(
      join(evil, 'model.json'),
      JSON.stringify({
        modelTopology: {},
        weightsManifest: [{ paths: ['../keras/group1-shard1of2.bin'], weights: [] }],
      }),
    );
    await expect(loadModelFiles(join(evil, 'model.json'))).rejects.toThrow(/outside its directory/);
    writeFileSync(join(evil, 'other.json'), JSON.stringify({ hello: 1 }));
    await expect(loadModelFiles(join(evil, 'other.json'))).rejects.toMatchObject({ code: 'CORRUPT_FILE' });
  });
});
