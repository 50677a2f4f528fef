import type { AdapterSpec, TrainingPlan } from '@flotilla/protocol';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAdaptedModel } from '../src/adapters/adapted-model.js';
import { initBackend } from '../src/backend/backend.js';
import { separableTask, tinyBase } from '../src/training/test-fixtures.js';
import { trainLocally } from '../src/training/train-locally.js';

// The custom gradients exist for the wasm backend, so check them where they are used.
describe('adapters on the wasm backend', () => {
  beforeAll(async () => {
    const info = await initBackend({ prefer: 'wasm', logger: () => undefined });
    expect(info.name).toBe('wasm');
  });

  it('custom gradients equal autodiff gradients to 1e-5 for a random adapter', () => {
    const base = tinyBase(8, 4);
    const spec: AdapterSpec = { mode: 'lora', targetModules: ['hidden', 'head'], r: 3, alpha: 6, seed: 2 };
    const custom = createAdaptedModel({ base, spec, gradients: 'custom' });
    const reference = createAdaptedModel({ base, spec, gradients: 'autodiff' });
    const random = new Map(
      [...custom.adapterTensors()].map(([name, t], i) => [
        name,
        {
          shape: t.shape,
          values: tf.tidy(() =>
            tf.randomUniform(t.shape, -0.5, 0.5, 'float32', 40 + i).dataSync<'float32'>(),
          ),
        },
      ]),
    );
    custom.loadAdapterTensors(random);
    reference.loadAdapterTensors(random);
    const x = tf.randomNormal([5, 8], 0, 1, 'float32', 1);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 1, 0], 'int32'), 3);
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
      expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])).toBeLessThanOrEqual(1e-5);
    }
    tf.dispose([x, y, g1.value, g2.value, ...Object.values(g1.grads), ...Object.values(g2.grads)]);
    custom.dispose();
    reference.dispose();
    base.dispose();
  });

  it('trains an ffa-lora adapter without leaking tensors', () => {
    const base = tinyBase(8, 5);
    const data = separableTask({ n: 60, features: 8, seed: 6 });
    const plan: TrainingPlan = {
      epochs: 3,
      batchSize: 16,
      learningRate: 0.05,
      fedProxMu: 0,
      optimizer: 'adam',
    };
    const spec: AdapterSpec = {
      mode: 'ffa-lora',
      targetModules: ['hidden', 'head'],
      r: 2,
      alpha: 4,
      seed: 7,
    };
    const round = (): number => {
      const model = createAdaptedModel({ base, spec });
      const result = trainLocally({
        model,
        data,
        holdout: data,
        plan,
        budget: { maxSteps: 12, maxSeconds: 20 },
      });
      model.dispose();
      return result.holdout.lossAfter - result.holdout.lossBefore;
    };
    expect(round()).toBeLessThan(0);
    const start = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) round();
    expect(tf.memory().numTensors).toBe(start);
    base.dispose();
  });
});
