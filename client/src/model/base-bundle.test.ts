import { FlotillaError, bundleFloat32Weights } from '@flotilla/protocol';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/backend.js';
import { loadBaseModel, serializeBaseModel } from './base-bundle.js';

function tinyModel(): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.dense({ inputShape: [6], units: 5, activation: 'relu', name: 'hidden' }));
  model.add(tf.layers.dense({ units: 3, activation: 'softmax', name: 'out' }));
  return model;
}

describe('base bundle', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'cpu', logger: () => undefined });
  });

  it('round-trips weights bit for bit and predicts identically', async () => {
    const model = tinyModel();
    const bytes = await serializeBaseModel(model);
    const loaded = await loadBaseModel(bytes);
    const before = model.getWeights();
    const after = loaded.getWeights();
    expect(after.map((t) => t.shape)).toEqual(before.map((t) => t.shape));
    before.forEach((tensor, i) => {
      expect(Array.from(after[i]?.dataSync() ?? [])).toEqual(Array.from(tensor.dataSync()));
    });
    const x = tf.randomNormal([4, 6], 0, 1, 'float32', 3);
    const yA = model.predict(x) as tf.Tensor;
    const yB = loaded.predict(x) as tf.Tensor;
    expect(Array.from(yB.dataSync())).toEqual(Array.from(yA.dataSync()));
    tf.dispose([x, yA, yB]);
    model.dispose();
    loaded.dispose();
  });

  it('gives the same bytes for the same model, and different bytes when a weight changes', async () => {
    const model = tinyModel();
    const a = await serializeBaseModel(model);
    const b = await serializeBaseModel(model);
    expect(b).toEqual(a);
    const reloaded = await loadBaseModel(a);
    expect(await serializeBaseModel(reloaded)).toEqual(a);
    const [kernel, ...rest] = model.getWeights();
    if (kernel === undefined) throw new Error('model has no weights');
    const bumped = tf.add(kernel, 1e-3);
    model.setWeights([bumped, ...rest]);
    expect(await serializeBaseModel(model)).not.toEqual(a);
    bumped.dispose();
    model.dispose();
    reloaded.dispose();
  });

  it('is readable without tfjs: protocol decodes the same kernels ([in, out]) and biases', async () => {
    const model = tinyModel();
    const weights = bundleFloat32Weights(await serializeBaseModel(model));
    expect(weights.get('hidden/kernel')?.shape).toEqual([6, 5]);
    expect(weights.get('out/bias')?.shape).toEqual([3]);
    for (const layer of model.layers) {
      for (const w of layer.weights) {
        expect(Array.from(weights.get(w.originalName)?.values ?? [])).toEqual(
          Array.from(w.read().dataSync()),
        );
      }
    }
    model.dispose();
  });

  it('refuses truncated or foreign bytes with CORRUPT_FILE', async () => {
    const model = tinyModel();
    const bytes = await serializeBaseModel(model);
    await expect(loadBaseModel(bytes.subarray(0, bytes.length - 4))).rejects.toSatisfy((e) =>
      FlotillaError.is(e, 'CORRUPT_FILE'),
    );
    await expect(loadBaseModel(new TextEncoder().encode('{"hello":1}'))).rejects.toSatisfy((e) =>
      FlotillaError.is(e, 'CORRUPT_FILE'),
    );
    model.dispose();
  });
});
