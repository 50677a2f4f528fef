import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RoundPlan } from '@flotilla/protocol';
import { initBackend } from '../backend/backend.js';
import { serializeBaseModel } from '../model/base-bundle.js';
import { separableTask, tinyBase } from '../training/test-fixtures.js';
import { silentLogger } from './logger.js';
import { TfjsTrainer } from './tfjs-trainer.js';

const FEATURES = 6;

function planWith(maxSteps: number, epochs: number): RoundPlan {
  return {
    roundId: 'task:1',
    taskId: 'task',
    roundNumber: 1,
    nonce: randomBytes(32).toString('hex'),
    baseModelDigest: '0'.repeat(64),
    adapter: {
      spec: { mode: 'lora', targetModules: ['hidden', 'head'], r: 2, alpha: 4, seed: 3 },
      version: 0,
      digest: null,
    },
    training: { epochs, batchSize: 16, learningRate: 0.05, fedProxMu: 0, optimizer: 'sgd' },
    budget: { maxSteps, maxSeconds: 60, maxUploadBytes: 1 << 20 },
    clipNorm: 1,
    quantization: 'none',
    validationTolerance: 10,
    deadline: Date.now() + 60_000,
  };
}

describe('TfjsTrainer numExamples', () => {
  let baseModel: Uint8Array;
  beforeAll(async () => {
    await initBackend({ prefer: 'cpu', logger: () => undefined });
    baseModel = await serializeBaseModel(tinyBase(FEATURES));
  });

  // The coordinator refuses claims above maxSteps × batchSize (EXAMPLES_EXCEEDED): an honest
  // device with more data than its step budget reaches must claim only what it trained on.
  it.each([
    { maxSteps: 3, epochs: 1, expected: 48 },
    { maxSteps: 100, epochs: 2, expected: 120 },
  ])('reports the distinct examples trained on: $maxSteps steps, $epochs epoch(s) → $expected', async (c) => {
    const trainer = new TfjsTrainer({
      data: {
        train: separableTask({ n: 120, features: FEATURES, seed: 1 }),
        holdout: separableTask({ n: 30, features: FEATURES, seed: 2 }),
      },
      preferBackend: 'cpu',
    });
    try {
      const outcome = await trainer.train(planWith(c.maxSteps, c.epochs), {
        deviceId: 'dev-1',
        baseModel,
        adapter: new Map(),
        signal: new AbortController().signal,
        logger: silentLogger,
      });
      expect(outcome).toMatchObject({ kind: 'update', numExamples: c.expected });
      expect(c.expected).toBeLessThanOrEqual(c.maxSteps * 16);
    } finally {
      trainer.dispose();
    }
  });
});
