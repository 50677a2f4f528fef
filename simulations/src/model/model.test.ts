import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '@flotilla/protocol';
import { subsetDataset } from '../data/dataset.js';
import { loadDomains } from '../data/domains.js';
import { makeSyntheticTask } from '../data/synthetic.js';
import { createRng } from '../rng/random.js';
import { baseModelConfigDigest, evaluateBaseModel, getBaseModel, type BaseModel } from './base-model.js';
import { centralizedBaseline } from './centralized.js';
import { evaluate } from './evaluate.js';
import { createMlp } from './mlp.js';

describe('evaluate', () => {
  it('scores a perfect and a uniform predictor as the definitions say', () => {
    const data = makeSyntheticTask({ rng: createRng(1), n: 50, dim: 3, numClasses: 5 });
    const perfect = (x: tf.Tensor2D) =>
      tf.oneHot(tf.tensor1d(data.ys.slice(0, x.shape[0]), 'int32'), 5).toFloat();
    const perfectScore = evaluate(perfect, data, { batchSize: 64 });
    expect(perfectScore.accuracy).toBe(1);
    expect(perfectScore.loss).toBeCloseTo(0, 6);
    // Uniform probabilities: cross-entropy ln(5); arg-max picks class 0, right for 10 of 50 (round-robin labels).
    const uniform = (x: tf.Tensor2D) => tf.fill([x.shape[0], 5], 0.2);
    const tensorsBefore = tf.memory().numTensors;
    const uniformScore = evaluate(uniform, data);
    expect(tf.memory().numTensors).toBe(tensorsBefore); // evaluate leaks no tensors
    expect(uniformScore.loss).toBeCloseTo(Math.log(5), 5);
    expect(uniformScore.accuracy).toBeCloseTo(0.2, 10);
  });

  it('creates the MLP with named layers and seeded, reproducible initial weights', () => {
    const a = createMlp({ seed: 3, hidden: 8 });
    const b = createMlp({ seed: 3, hidden: 8 });
    expect(a.layers.map((layer) => layer.name)).toEqual(['hidden', 'out']);
    expect(a.layers[0]?.getWeights()[0]?.shape).toEqual([784, 8]);
    expect(Array.from(a.getWeights()[0]?.dataSync() ?? [])).toEqual(
      Array.from(b.getWeights()[0]?.dataSync() ?? []),
    );
    a.dispose();
    b.dispose();
  });
});

describe('base model (trained once per test run, cached by content address)', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'flotilla-base-'));
  const config = { dataset: 'mnist-rotated' as const, seed: 1 };
  let base: BaseModel;

  beforeAll(async () => {
    base = await getBaseModel({ stateDir, config });
  });

  it('is cached under <stateDir>/cache/base-<config digest>.bundle and reloads identically', async () => {
    expect(base.cached).toBe(false);
    expect(base.path).toBe(join(stateDir, 'cache', `base-${baseModelConfigDigest(config)}.bundle`));
    expect(base.digest).toBe(sha256Hex(base.bytes));
    const again = await getBaseModel({ stateDir, config });
    expect(again.cached).toBe(true);
    expect(again.digest).toBe(base.digest);
    expect(baseModelConfigDigest({ ...config, hidden: 64 })).not.toBe(base.configDigest);
    again.model.dispose();
  });

  it('training is deterministic: two fresh caches give byte-identical bundles', async () => {
    // The synthetic task keeps this cheap; the MNIST path runs the same code.
    const small = {
      dataset: 'synthetic' as const,
      seed: 4,
      hidden: 16,
      epochs: 2,
      syntheticExamples: 600,
      syntheticDim: 8,
    };
    const first = await getBaseModel({
      stateDir: mkdtempSync(join(tmpdir(), 'flotilla-base-a-')),
      config: small,
    });
    const second = await getBaseModel({
      stateDir: mkdtempSync(join(tmpdir(), 'flotilla-base-b-')),
      config: small,
    });
    expect(first.cached).toBe(false);
    expect(second.cached).toBe(false);
    expect(second.digest).toBe(first.digest);
    first.model.dispose();
    second.model.dispose();
  });

  it('is accurate on clean digits and clearly worse on rotated ones', () => {
    const domains = loadDomains({ dataset: 'mnist-rotated', seed: 1 });
    const scores = evaluateBaseModel(base, domains);
    console.info(
      `base model [${base.backend}, ${Math.round(base.trainMs)} ms]: clean ${(scores.clean.accuracy * 100).toFixed(1)}%, rotated 35° ${(scores.shifted.accuracy * 100).toFixed(1)}%`,
    );
    // An MLP on MNIST reaches > 90% test accuracy (LeCun et al. 1998 report 95–98% for 1-hidden-layer nets
    // on the full 60k set; we train 3 epochs on 5k digits).
    expect(scores.clean.accuracy).toBeGreaterThan(0.88);
    expect(scores.shifted.accuracy).toBeLessThan(scores.clean.accuracy - 0.15);
  });

  it('a centralized fine-tune on rotated digits recovers accuracy on the rotated test set', async () => {
    const domains = loadDomains({ dataset: 'mnist-rotated', seed: 1 });
    const pooled = subsetDataset(
      domains.shifted.train,
      Array.from({ length: 2000 }, (_, i) => i),
    );
    const before = evaluate(base.model, domains.shifted.test).accuracy;
    for (const mode of ['ffa-lora', 'full'] as const) {
      const result = await centralizedBaseline({
        baseBytes: base.bytes,
        train: pooled,
        test: domains.shifted.test,
        holdout: domains.shifted.holdout,
        mode,
        epochs: 2,
      });
      console.info(
        `centralized ${mode}: ${(result.accuracy * 100).toFixed(1)}% after ${result.steps} steps (${Math.round(result.trainMs)} ms)`,
      );
      expect(result.accuracy).toBeGreaterThan(before + 0.1);
    }
  });
});
