import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAdaptedModel } from '../adapters/adapted-model.js';
import { initBackend } from '../backend/backend.js';
import { evaluateModel } from './evaluate.js';
import { separableTask, tinyBase } from './test-fixtures.js';

describe('evaluateModel', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'cpu', logger: () => undefined });
  });

  it('reports which examples are right, in order, across batches, consistent with the accuracy', () => {
    const data = separableTask({ n: 50, features: 6, seed: 4 });
    const model = createAdaptedModel({
      base: tinyBase(6),
      spec: { mode: 'bias', targetModules: ['head'], r: 1, alpha: 1, seed: 0 },
    });
    try {
      const result = evaluateModel(model, data, 16);
      expect(result.examples).toBe(50);
      expect(result.correct).toHaveLength(50);
      expect(result.correct.every((v) => v === 0 || v === 1)).toBe(true);
      expect(result.correct.reduce((s, v) => s + v, 0) / 50).toBeCloseTo(result.accuracy, 12);
      // Independent reference: the arg-max of the model's logits, example by example.
      const logits = tf.tidy(() => model.logits(tf.tensor2d(data.xs, [50, 6])).arraySync());
      const expected = logits.map((row, i) => {
        const best = row.indexOf(Math.max(...row));
        return best === data.ys[i] ? 1 : 0;
      });
      expect([...result.correct]).toEqual(expected);
    } finally {
      model.dispose();
    }
  });
});
