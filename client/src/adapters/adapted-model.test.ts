import type { AdapterSpec } from '@flotilla/protocol';
import { FlotillaError, biasTensorName, loraTensorNames, weightTensorName } from '@flotilla/protocol';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/backend.js';
import { createAdaptedModel } from './adapted-model.js';

function mlp(): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.flatten({ inputShape: [3, 4] }));
  model.add(tf.layers.dense({ units: 8, activation: 'relu', name: 'hidden' }));
  model.add(tf.layers.dropout({ rate: 0.5 }));
  model.add(tf.layers.dense({ units: 5, activation: 'tanh', name: 'mid' }));
  model.add(tf.layers.dense({ units: 3, activation: 'softmax', name: 'head' }));
  return model;
}

const spec = (mode: AdapterSpec['mode']): AdapterSpec => ({
  mode,
  targetModules: ['hidden', 'head'],
  r: 2,
  alpha: 4,
  seed: 11,
});

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] ?? Infinity);
}

describe('adapted model', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'cpu', logger: () => undefined });
  });

  it.each(['lora', 'ffa-lora', 'bias', 'full'] as const)(
    'equals the base while B (or the bias/kernel offset) is zero: %s',
    (mode) => {
      const base = mlp();
      const adapted = createAdaptedModel({ base, spec: spec(mode) });
      const x = tf.randomNormal([7, 3, 4], 0, 1, 'float32', 5);
      const expected = base.predict(x) as tf.Tensor;
      const got = adapted.predict(x);
      expect(got.shape).toEqual([7, 3]);
      expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(1e-6);
      // logits are the pre-softmax values: softmax(logits) must give the same output.
      const viaLogits = tf.tidy(() => tf.softmax(adapted.logits(x)));
      expect(maxAbsDiff(viaLogits, expected)).toBeLessThanOrEqual(1e-6);
      tf.dispose([x, expected, got, viaLogits]);
      adapted.dispose();
      base.dispose();
    },
  );

  it('names and shapes tensors the PEFT way and draws the same A for the same seed', () => {
    const base = mlp();
    const a = createAdaptedModel({ base, spec: spec('ffa-lora') });
    const b = createAdaptedModel({ base, spec: spec('ffa-lora') });
    const shapes = a.adapterShapes();
    expect(shapes.get(loraTensorNames('hidden').a)).toEqual([2, 12]);
    expect(shapes.get(loraTensorNames('hidden').b)).toEqual([8, 2]);
    expect(shapes.get(loraTensorNames('head').a)).toEqual([2, 5]);
    expect(shapes.get(loraTensorNames('head').b)).toEqual([3, 2]);
    const ta = a.adapterTensors().get(loraTensorNames('hidden').a);
    const tb = b.adapterTensors().get(loraTensorNames('hidden').a);
    expect(ta?.values).toEqual(tb?.values);
    // kaiming_uniform(a=√5) bound is 1/√in = 1/√12.
    for (const v of ta?.values ?? []) expect(Math.abs(v)).toBeLessThanOrEqual(1 / Math.sqrt(12));
    expect(a.trainableVariables()).toHaveLength(2);
    a.dispose();
    b.dispose();
    base.dispose();
  });

  it('custom gradients equal tfjs autodiff gradients to 1e-5', () => {
    const base = mlp();
    for (const mode of ['lora', 'ffa-lora', 'bias', 'full'] as const) {
      const custom = createAdaptedModel({ base, spec: spec(mode), gradients: 'custom' });
      const reference = createAdaptedModel({ base, spec: spec(mode), gradients: 'autodiff' });
      // Random non-zero B and bias offsets so every gradient path carries signal.
      const random = new Map(
        [...custom.adapterTensors()].map(([name, t], i) => [
          name,
          {
            shape: t.shape,
            values: tf.tidy(
              () => tf.randomNormal(t.shape, 0, 0.5, 'float32', 100 + i).dataSync() as Float32Array,
            ),
          },
        ]),
      );
      if (mode === 'ffa-lora')
        for (const [name, t] of custom.adapterTensors()) if (name.includes('lora_A')) random.set(name, t);
      custom.loadAdapterTensors(random);
      reference.loadAdapterTensors(random);
      const x = tf.randomNormal([6, 3, 4], 0, 1, 'float32', 9);
      const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32'), 3);
      const lossOf = (m: typeof custom) => () =>
        tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(labels, m.logits(x));
      const g1 = tf.variableGrads(lossOf(custom), custom.trainableVariables());
      const g2 = tf.variableGrads(lossOf(reference), reference.trainableVariables());
      const names1 = [...custom.trainableVariableMap().entries()];
      const names2 = new Map(reference.trainableVariableMap());
      expect(names1.length).toBeGreaterThan(0);
      for (const [name, variable] of names1) {
        const other = names2.get(name);
        const grad1 = g1.grads[variable.name];
        const grad2 = other === undefined ? undefined : g2.grads[other.name];
        if (grad1 === undefined || grad2 === undefined) throw new Error(`no gradient for ${name}`);
        expect(maxAbsDiff(grad1, grad2)).toBeLessThanOrEqual(1e-5);
        expect(tf.tidy(() => tf.max(tf.abs(grad2)).dataSync()[0] ?? 0)).toBeGreaterThan(0);
      }
      tf.dispose([x, labels, g1.value, g2.value, ...Object.values(g1.grads), ...Object.values(g2.grads)]);
      custom.dispose();
      reference.dispose();
    }
    base.dispose();
  });

  it('full mode: the kernel offset [out, in] is added transposed to the tfjs kernel', () => {
    const base = mlp();
    const adapted = createAdaptedModel({ base, spec: spec('full') });
    const shapes = adapted.adapterShapes();
    expect([...shapes.keys()].sort()).toEqual(
      [
        weightTensorName('hidden'),
        biasTensorName('hidden'),
        weightTensorName('head'),
        biasTensorName('head'),
      ].sort(),
    );
    expect(shapes.get(weightTensorName('hidden'))).toEqual([8, 12]); // [out, in]
    expect(shapes.get(biasTensorName('hidden'))).toEqual([8]);
    const offsets = new Map(
      [...shapes].map(([name, shape], i) => [
        name,
        {
          shape,
          values: tf.tidy(() => tf.randomNormal(shape, 0, 0.3, 'float32', 40 + i).dataSync() as Float32Array),
        },
      ]),
    );
    adapted.loadAdapterTensors(offsets);
    // Reference: a copy of the base whose own weights are set to W + offsetᵀ and b + offset by
    // tfjs itself (layer.setWeights), independent of the adapted forward pass.
    const reference = mlp();
    reference.setWeights(base.getWeights());
    for (const module of ['hidden', 'head']) {
      const layer = reference.getLayer(module);
      const [w, b] = layer.getWeights();
      const d = offsets.get(weightTensorName(module));
      const db = offsets.get(biasTensorName(module));
      if (!w || !b || !d || !db) throw new Error('missing weights');
      const adaptedWeights = tf.tidy(() => [
        tf.add(w, tf.transpose(tf.tensor2d(d.values, [d.shape[0] ?? 0, d.shape[1] ?? 0]))),
        tf.add(b, tf.tensor1d(db.values)),
      ]);
      layer.setWeights(adaptedWeights);
      tf.dispose(adaptedWeights);
    }
    const x = tf.randomNormal([5, 3, 4], 0, 1, 'float32', 3);
    const expected = reference.predict(x) as tf.Tensor;
    const got = adapted.predict(x);
    expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(1e-5);
    tf.dispose([x, expected, got]);
    adapted.dispose();
    reference.dispose();
    base.dispose();
  });

  it('full mode: training moves only the offsets; the base weights stay bitwise equal', () => {
    const base = mlp();
    const before = base.getWeights().map((w) => Float32Array.from(w.dataSync()));
    const adapted = createAdaptedModel({ base, spec: spec('full') });
    const start = adapted.adapterTensors();
    const x = tf.randomNormal([6, 3, 4], 0, 1, 'float32', 21);
    const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32'), 3);
    const optimizer = tf.train.adam(0.05);
    for (let step = 0; step < 5; step++) {
      optimizer.minimize(
        () => tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(labels, adapted.logits(x)),
        false,
        adapted.trainableVariables(),
      );
    }
    optimizer.dispose();
    const after = base.getWeights().map((w) => Float32Array.from(w.dataSync()));
    expect(after).toEqual(before);
    const trained = adapted.adapterTensors();
    expect([...trained.keys()].sort()).toEqual([...start.keys()].sort());
    for (const name of [weightTensorName('hidden'), weightTensorName('head'), biasTensorName('head')]) {
      expect(trained.get(name)?.values.some((v) => v !== 0)).toBe(true);
    }
    // applyDelta adds in PEFT layout: applying −(trained) brings every offset back to zero.
    const negated = new Map(
      [...trained].map(([name, t]) => [name, { shape: t.shape, values: t.values.map((v) => -v) }]),
    );
    adapted.applyDelta(negated);
    for (const t of adapted.adapterTensors().values()) expect(t.values.every((v) => v === 0)).toBe(true);
    tf.dispose([x, labels]);
    adapted.dispose();
    base.dispose();
  });

  it('validates loaded tensors and refuses non-zero deltas on a frozen A', () => {
    const base = mlp();
    const adapted = createAdaptedModel({ base, spec: spec('ffa-lora') });
    const tensors = adapted.adapterTensors();
    const names = loraTensorNames('hidden');
    const wrong = new Map(tensors);
    wrong.set(names.b, { shape: [2, 8], values: new Float32Array(16) });
    expect(() => adapted.loadAdapterTensors(wrong)).toThrow(
      expect.objectContaining({ code: 'SHAPE_MISMATCH' }),
    );
    const missing = new Map(tensors);
    missing.delete(names.b);
    expect(() => adapted.loadAdapterTensors(missing)).toThrow(
      expect.objectContaining({ code: 'SHAPE_MISMATCH' }),
    );
    expect(() =>
      adapted.applyDelta(new Map([[names.a, { shape: [2, 12], values: new Float32Array(24).fill(0.1) }]])),
    ).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
    const bDelta = new Float32Array(16).fill(0.25);
    adapted.applyDelta(new Map([[names.b, { shape: [8, 2], values: bDelta }]]));
    expect(adapted.adapterTensors().get(names.b)?.values).toEqual(bDelta);
    adapted.dispose();
    base.dispose();
  });

  it('refuses unknown modules, adapters on frozen layer kinds and stateful RNNs with BAD_REQUEST', () => {
    const base = mlp();
    expect(() => createAdaptedModel({ base, spec: { ...spec('lora'), targetModules: ['nope'] } })).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST' }),
    );
    // Convolutions stay frozen: an adapter may not target one, a Dense head after it is fine.
    const conv = tf.sequential();
    conv.add(tf.layers.conv1d({ inputShape: [8, 2], filters: 2, kernelSize: 3, name: 'conv' }));
    conv.add(tf.layers.flatten());
    conv.add(tf.layers.dense({ units: 2, name: 'out' }));
    expect(() =>
      createAdaptedModel({ base: conv, spec: { ...spec('lora'), targetModules: ['conv'] } }),
    ).toThrow(/target module 'conv' is a Conv1D: adapters attach to Dense layers/);
    createAdaptedModel({ base: conv, spec: { ...spec('lora'), targetModules: ['out'] } }).dispose();
    // A stateful RNN would carry its state from one batch to the next.
    const stateful = tf.sequential();
    stateful.add(tf.layers.simpleRNN({ batchInputShape: [4, 3, 2], units: 2, stateful: true }));
    stateful.add(tf.layers.dense({ units: 2, name: 'out' }));
    let caught: unknown;
    try {
      createAdaptedModel({ base: stateful, spec: { ...spec('lora'), targetModules: ['out'] } });
    } catch (error) {
      caught = error;
    }
    expect(FlotillaError.is(caught, 'BAD_REQUEST')).toBe(true);
    expect(String(caught)).toContain('stateful SimpleRNN');
    stateful.dispose();
    conv.dispose();
    base.dispose();
  });
});
