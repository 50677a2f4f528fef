import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AdapterSpec, TrainingPlan } from '@flotilla/protocol';
import { createAdaptedModel, initBackend, trainLocally, type LocalDataset } from '@flotilla/client';
import { createRng } from '../rng/random.js';
import { createCharRnn } from './char-rnn.js';
import { createCnn } from './cnn.js';

// The built-in CNN and character RNN, and a model whose adapter sits upstream of a frozen GRU,
// with adapters trained on the wasm backend (the one simulated devices use here).

const spec = (mode: AdapterSpec['mode'], targetModules: string[]): AdapterSpec => ({
  mode,
  targetModules,
  r: 2,
  alpha: 4,
  seed: 3,
});

function weightsOf(model: tf.LayersModel): number[][] {
  return model.getWeights().map((w) => Array.from(w.dataSync()));
}

/** Custom-gradient and autodiff adapters, loaded with the same random adapter, give the same gradients. */
function expectSameGradients(
  base: tf.LayersModel,
  adapter: AdapterSpec,
  x: tf.Tensor,
  labels: number[],
  classes: number,
): void {
  const custom = createAdaptedModel({ base, spec: adapter, gradients: 'custom' });
  const reference = createAdaptedModel({ base, spec: adapter, gradients: 'autodiff' });
  const random = new Map(
    [...custom.adapterTensors()].map(([name, t], i) => [
      name,
      {
        shape: t.shape,
        values: tf.tidy(() => tf.randomUniform(t.shape, -0.5, 0.5, 'float32', 10 + i).dataSync<'float32'>()),
      },
    ]),
  );
  custom.loadAdapterTensors(random);
  reference.loadAdapterTensors(random);
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
  const g1 = tf.variableGrads(
    () => tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(y, custom.logits(x)),
    custom.trainableVariables(),
  );
  const g2 = tf.variableGrads(
    () => tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(y, reference.logits(x)),
    reference.trainableVariables(),
  );
  const refByName = reference.trainableVariableMap();
  for (const [name, variable] of custom.trainableVariableMap()) {
    const a = g1.grads[variable.name];
    const b = g2.grads[refByName.get(name)?.name ?? ''];
    if (a === undefined || b === undefined) throw new Error(`missing gradient for ${name}`);
    expect(tf.tidy(() => tf.max(tf.abs(a)).dataSync()[0])).toBeGreaterThan(0);
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])).toBeLessThanOrEqual(1e-5);
  }
  tf.dispose([y, g1.value, g2.value, ...Object.values(g1.grads), ...Object.values(g2.grads)]);
  custom.dispose();
  reference.dispose();
}

/** Trains an FFA-LoRA adapter on the head: the holdout loss falls, the base does not move, nothing leaks. */
function expectTrainsHead(base: tf.LayersModel, data: LocalDataset, holdout: LocalDataset): void {
  const before = weightsOf(base);
  const tensors = tf.memory().numTensors;
  const model = createAdaptedModel({ base, spec: spec('ffa-lora', ['hidden', 'out']) });
  const plan: TrainingPlan = {
    epochs: 20,
    batchSize: 16,
    learningRate: 0.05,
    fedProxMu: 0,
    optimizer: 'adam',
  };
  const result = trainLocally({
    model,
    data,
    holdout,
    plan,
    budget: { maxSteps: 60, maxSeconds: 120 },
    seed: 1,
  });
  model.dispose();
  expect(result.steps).toBe(60);
  expect(result.holdout.lossAfter).toBeLessThan(result.holdout.lossBefore * 0.8);
  expect(weightsOf(base)).toEqual(before);
  expect(tf.memory().numTensors).toBe(tensors);
}

describe('adapters on the built-in architectures (wasm)', () => {
  beforeAll(async () => {
    const info = await initBackend({ prefer: 'wasm', logger: () => undefined });
    expect(info.name).toBe('wasm');
  });

  it('CNN: adapters on the dense head start at the base, train, and leave the convolutions frozen', () => {
    const base = createCnn({ seed: 2, inputShape: [8, 8, 1], hidden: 12, numClasses: 3, filters: [2, 4] });
    // Class c: a bright 2x2 block at one of three places.
    const rng = createRng(9);
    const images = (n: number): LocalDataset => {
      const xs = new Float32Array(n * 64);
      const ys = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const c = i % 3;
        ys[i] = c;
        for (let p = 0; p < 64; p++) xs[i * 64 + p] = 0.1 * rng.next();
        const corners: ReadonlyArray<readonly [number, number]> = [
          [1, 1],
          [1, 5],
          [5, 3],
        ];
        const [r0, c0] = corners[c] ?? [0, 0];
        for (const [dr, dc] of [
          [0, 0],
          [0, 1],
          [1, 0],
          [1, 1],
        ] as const)
          xs[i * 64 + (r0 + dr) * 8 + c0 + dc] = 1;
      }
      return { xs, ys, featureShape: [8, 8, 1] };
    };
    const x = tf.tensor(images(6).xs, [6, 8, 8, 1]);
    const adapted = createAdaptedModel({ base, spec: spec('ffa-lora', ['hidden', 'out']) });
    const diff = tf.tidy(
      () => tf.max(tf.abs(tf.sub(adapted.predict(x), base.predict(x) as tf.Tensor))).dataSync()[0],
    );
    expect(diff).toBeLessThanOrEqual(1e-6);
    adapted.dispose();
    expectSameGradients(base, spec('lora', ['hidden', 'out']), x, [0, 1, 2, 0, 1, 2], 3);
    expectTrainsHead(base, images(60), images(30));
    expect(() => createAdaptedModel({ base, spec: spec('lora', ['conv2']) })).toThrow(/'conv2' is a Conv2D/);
    x.dispose();
    base.dispose();
  });

  for (const cell of ['gru', 'lstm'] as const) {
    it(`char-RNN (${cell}): adapters on the dense head over a frozen embedding and ${cell.toUpperCase()}`, () => {
      const base = createCharRnn({
        seed: 4,
        sequenceLength: 5,
        vocabularySize: 6,
        numClasses: 6,
        hidden: 12,
        cell,
      });
      // The next token of a window repeats its last one: learnable from the recurrent state.
      const rng = createRng(11);
      const windows = (n: number): LocalDataset => {
        const xs = new Float32Array(n * 5);
        const ys = new Int32Array(n);
        for (let i = 0; i < n; i++) {
          for (let t = 0; t < 5; t++) xs[i * 5 + t] = rng.int(6);
          ys[i] = xs[i * 5 + 4] ?? 0;
        }
        return { xs, ys, featureShape: [5] };
      };
      // A pre-trained base tells tokens apart; an untrained one's tiny embeddings barely do.
      const table = tf.tidy(() => tf.mul(tf.eye(6, 8), 3));
      base.getLayer('embed').setWeights([table]);
      table.dispose();
      const x = tf.tensor2d([
        [1, 2, 3, 4, 5],
        [0, 0, 1, 1, 2],
        [5, 4, 3, 2, 1],
      ]);
      const adapted = createAdaptedModel({ base, spec: spec('ffa-lora', ['hidden', 'out']) });
      const diff = tf.tidy(
        () => tf.max(tf.abs(tf.sub(adapted.predict(x), base.predict(x) as tf.Tensor))).dataSync()[0],
      );
      expect(diff).toBeLessThanOrEqual(1e-6);
      adapted.dispose();
      expectSameGradients(base, spec('lora', ['hidden', 'out']), x, [1, 0, 5], 6);
      expectTrainsHead(base, windows(120), windows(60));
      x.dispose();
      base.dispose();
    });
  }

  it('an adapter upstream of a frozen GRU gets its gradient through the GRU (Dense on a sequence)', () => {
    const model = tf.sequential();
    model.add(
      tf.layers.dense({
        name: 'proj',
        inputShape: [4, 3],
        units: 5,
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
    );
    model.add(
      tf.layers.gru({
        name: 'rnn',
        units: 4,
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
        recurrentInitializer: tf.initializers.orthogonal({ seed: 3 }),
      }),
    );
    model.add(
      tf.layers.dense({
        name: 'out',
        units: 3,
        activation: 'softmax',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }),
      }),
    );
    const x = tf.randomNormal([5, 4, 3], 0, 1, 'float32', 7);
    expectSameGradients(model, spec('lora', ['proj', 'out']), x, [0, 1, 2, 1, 0], 3);
    x.dispose();
    model.dispose();
  });
});
