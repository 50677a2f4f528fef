import type { AdapterSpec, TrainingPlan } from '@flotilla/protocol';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAdaptedModel } from '../adapters/adapted-model.js';
import { initBackend } from '../backend/backend.js';
import { flippedLabels, separableTask, tinyBase } from './test-fixtures.js';
import { trainLocally, trainLocallyYielding } from './train-locally.js';
import { validationGate } from './validation-gate.js';

const FEATURES = 6;
const plan: TrainingPlan = { epochs: 5, batchSize: 16, learningRate: 0.05, fedProxMu: 0, optimizer: 'adam' };
const spec = (mode: AdapterSpec['mode']): AdapterSpec => ({
  mode,
  targetModules: ['hidden', 'head'],
  r: 2,
  alpha: 4,
  seed: 3,
});

function snapshot(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => Float32Array.from(w.dataSync()));
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ua.length === ub.length && ua.every((v, i) => v === ub[i]);
}

describe('local training', () => {
  const train = separableTask({ n: 120, features: FEATURES, seed: 1 });
  const holdout = separableTask({ n: 60, features: FEATURES, seed: 2 });

  beforeAll(async () => {
    await initBackend({ prefer: 'cpu', logger: () => undefined });
  });

  it.each(['lora', 'ffa-lora', 'bias'] as const)(
    '%s: moves only its adapter tensors and keeps the base bitwise',
    (mode) => {
      const base = tinyBase(FEATURES);
      const baseBefore = snapshot(base);
      const model = createAdaptedModel({ base, spec: spec(mode) });
      const before = model.adapterTensors();
      const result = trainLocally({
        model,
        data: train,
        holdout,
        plan,
        budget: { maxSteps: 20, maxSeconds: 30 },
        seed: 1,
      });
      expect(result.steps).toBe(20);
      expect(result.stoppedBy).toBe('maxSteps');
      snapshot(base).forEach((w, i) => expect(bitsEqual(w, baseBefore[i] ?? new Float32Array())).toBe(true));
      const after = model.adapterTensors();
      for (const [name, t] of before) {
        const moved = !bitsEqual(t.values, after.get(name)?.values ?? new Float32Array());
        const trainable = mode === 'lora' || !name.endsWith('lora_A.weight');
        expect({ name, moved }).toEqual({ name, moved: trainable });
        if (trainable) {
          // delta = after − before, reported for exactly the trainable tensors.
          const d = result.delta.get(name)?.values ?? new Float32Array();
          const expected = after.get(name)?.values.map((v, i) => v - (t.values[i] ?? 0));
          expect(Array.from(d)).toEqual(Array.from(expected ?? []));
        } else {
          expect(result.delta.has(name)).toBe(false);
        }
      }
      if (mode === 'bias') expect([...after.keys()].every((n) => n.endsWith('.bias'))).toBe(true);
      model.dispose();
      base.dispose();
    },
  );

  it('improves holdout accuracy on a separable task, and the gate passes it', () => {
    const base = tinyBase(FEATURES);
    const model = createAdaptedModel({ base, spec: spec('lora') });
    const result = trainLocally({
      model,
      data: train,
      holdout,
      plan,
      budget: { maxSteps: 200, maxSeconds: 30 },
      seed: 2,
    });
    expect(result.holdout.accuracyAfter).toBeGreaterThan(result.holdout.accuracyBefore);
    expect(result.holdout.accuracyAfter).toBeGreaterThanOrEqual(0.9);
    expect(result.holdout.lossAfter).toBeLessThan(result.holdout.lossBefore);
    // 120 examples in batches of 16 = 8 steps an epoch; 5 epochs end before the 200-step budget.
    expect(result.stoppedBy).toBe('epochs');
    expect(result.steps).toBe(40);
    expect(result.examples).toBe(600);
    expect(
      validationGate({
        lossBefore: result.holdout.lossBefore,
        lossAfter: result.holdout.lossAfter,
        tolerance: 0,
      }).pass,
    ).toBe(true);
    model.dispose();
    base.dispose();
  });

  it('the validation gate refuses an update trained on flipped labels', () => {
    const base = tinyBase(FEATURES);
    const model = createAdaptedModel({ base, spec: spec('lora') });
    // First make the adapter good, then train it on the harmful labels.
    trainLocally({ model, data: train, holdout, plan, budget: { maxSteps: 100, maxSeconds: 30 }, seed: 3 });
    const harmful = trainLocally({
      model,
      data: flippedLabels(train),
      holdout,
      plan,
      budget: { maxSteps: 60, maxSeconds: 30 },
      seed: 4,
    });
    const gate = validationGate({
      lossBefore: harmful.holdout.lossBefore,
      lossAfter: harmful.holdout.lossAfter,
      tolerance: 0.05,
    });
    expect(gate.pass).toBe(false);
    expect(gate.reason).toMatch(/rose/);
    model.dispose();
    base.dispose();
  });

  it('FedProx keeps the update closer to the start than plain training', () => {
    const norms = [0, 5].map((mu) => {
      const base = tinyBase(FEATURES);
      const model = createAdaptedModel({ base, spec: spec('lora') });
      const result = trainLocally({
        model,
        data: train,
        holdout,
        plan: { ...plan, optimizer: 'sgd', learningRate: 0.2 },
        budget: { maxSteps: 40, maxSeconds: 30 },
        fedProxMu: mu,
        seed: 5,
      });
      model.dispose();
      base.dispose();
      let sum = 0;
      for (const t of result.delta.values()) for (const v of t.values) sum += v * v;
      return Math.sqrt(sum);
    });
    expect(norms[1]).toBeLessThan(norms[0] ?? 0);
  });

  it('leaks no tensors over 50 small rounds', () => {
    const base = tinyBase(FEATURES);
    const small = { ...train, xs: train.xs.subarray(0, 8 * FEATURES), ys: train.ys.subarray(0, 8) };
    const round = (): void => {
      const model = createAdaptedModel({ base, spec: spec('lora') });
      const result = trainLocally({
        model,
        data: small,
        holdout: small,
        plan: { ...plan, fedProxMu: 0.1 },
        budget: { maxSteps: 2, maxSeconds: 10 },
      });
      model.applyDelta(result.delta);
      model.dispose();
    };
    round();
    const start = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) round();
    expect(tf.memory().numTensors).toBe(start);
    base.dispose();
  });
});

describe('validation gate', () => {
  it('passes exactly up to lossBefore·(1 + tolerance)', () => {
    expect(validationGate({ lossBefore: 1, lossAfter: 1.05, tolerance: 0.05 }).pass).toBe(true);
    expect(validationGate({ lossBefore: 1, lossAfter: 1.0501, tolerance: 0.05 }).pass).toBe(false);
    expect(validationGate({ lossBefore: 2, lossAfter: 0.5, tolerance: 0 }).pass).toBe(true);
    expect(validationGate({ lossBefore: 1, lossAfter: Number.NaN, tolerance: 1 }).pass).toBe(false);
    // A task without the gate (tolerance null): whatever the holdout says, the update is sent.
    expect(validationGate({ lossBefore: 1, lossAfter: 50, tolerance: null }).pass).toBe(true);
  });

  it('yielding to the event loop trains the same steps bit for bit, and an abort stops it leaving no tensor', async () => {
    await initBackend({ prefer: 'cpu', logger: () => undefined });
    const options = (model: ReturnType<typeof createAdaptedModel>) => ({
      model,
      data: separableTask({ n: 120, features: FEATURES, seed: 1 }),
      holdout: separableTask({ n: 60, features: FEATURES, seed: 2 }),
      plan,
      budget: { maxSteps: 40, maxSeconds: 30 },
      seed: 4,
    });
    const base = tinyBase(FEATURES);
    const one = createAdaptedModel({ base, spec: spec('lora') });
    const two = createAdaptedModel({ base, spec: spec('lora') });
    const inOneGo = trainLocally(options(one));
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    const yielding = await trainLocallyYielding(options(two), {
      yieldEveryMs: 0,
      signal: new AbortController().signal,
    });
    clearInterval(ticker);
    // Other work ran while it trained (a turn after every step with yieldEveryMs 0).
    expect(turns).toBeGreaterThan(0);
    expect(yielding.steps).toBe(inOneGo.steps);
    for (const [name, t] of inOneGo.delta)
      expect(bitsEqual(t.values, yielding.delta.get(name)?.values ?? new Float32Array())).toBe(true);

    // Stopped after its first turn: rejects with the reason; optimizer and snapshots are released.
    const stop = new AbortController();
    const tensorsBefore = tf.memory().numTensors;
    const reason = new Error('stopped by the owner');
    setTimeout(() => stop.abort(reason), 0);
    await expect(trainLocallyYielding(options(two), { yieldEveryMs: 0, signal: stop.signal })).rejects.toBe(
      reason,
    );
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    one.dispose();
    two.dispose();
    base.dispose();
  });
});
