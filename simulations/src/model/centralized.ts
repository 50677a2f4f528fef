import type * as tf from '@tensorflow/tfjs';
import { FlotillaError } from '@flotilla/protocol';
import { createAdaptedModel, loadBaseModel, trainLocally } from '@flotilla/client';
import type { Dataset } from '../data/dataset.js';
import { createRng } from '../rng/random.js';
import { evaluate } from './evaluate.js';
import { trainFullModel } from './mlp.js';

/** Options for {@link centralizedBaseline}. */
export interface CentralizedBaselineOptions {
  /** The base model bundle (`tfjs-layers-bundle` bytes); a fresh copy is trained. */
  baseBytes: Uint8Array;
  /** Training data: the union of all devices' (shifted-domain) data. */
  train: Dataset;
  /** Where accuracy is measured (the shifted test set). */
  test: Dataset;
  /** Held-out data for the adapter trainer's before/after report (the shifted holdout). */
  holdout: Dataset;
  /** 'full' trains every weight; the adapter modes train only the adapter, as devices do. */
  mode: 'full' | 'lora' | 'ffa-lora' | 'bias';
  /** Adapter rank, alpha, targets and A seed (adapter modes). Defaults r 16, alpha 32, ['hidden', 'out'], seed 0. */
  adapter?: { r?: number; alpha?: number; targetModules?: string[]; seed?: number };
  /** Default 3. */
  epochs?: number;
  /** Default 32. */
  batchSize?: number;
  /** Default 0.03 for adapters, 0.001 for full. */
  learningRate?: number;
  /** Seed of the batch order. Default 0. */
  seed?: number;
}

export interface CentralizedBaselineResult {
  mode: CentralizedBaselineOptions['mode'];
  accuracy: number;
  loss: number;
  steps: number;
  trainMs: number;
}

/**
 * The non-federated reference: the same base, fine-tuned centrally on all device data pooled
 * together, for the "federated vs centralized" comparison. Adapter modes use the device's own
 * trainer (`trainLocally` from @flotilla/client) with Adam and no step budget beyond the epochs.
 */
export async function centralizedBaseline(
  options: CentralizedBaselineOptions,
): Promise<CentralizedBaselineResult> {
  const epochs = options.epochs ?? 3;
  const batchSize = options.batchSize ?? 32;
  const seed = options.seed ?? 0;
  if (options.train.n === 0)
    throw new FlotillaError('BAD_REQUEST', 'centralized baseline needs training data');
  const base = await loadBaseModel(options.baseBytes);
  const started = performance.now();
  try {
    if (options.mode === 'full') {
      const { steps } = await trainFullModel({
        model: base,
        data: options.train,
        epochs,
        batchSize,
        learningRate: options.learningRate ?? 0.001,
        rng: createRng(seed).fork('centralized/order'),
      });
      const trainMs = performance.now() - started;
      return { mode: 'full', ...evaluate(base, options.test), steps, trainMs };
    }
    const adapted = createAdaptedModel({
      base,
      spec: {
        mode: options.mode,
        r: options.adapter?.r ?? 16,
        alpha: options.adapter?.alpha ?? 32,
        targetModules: options.adapter?.targetModules ?? ['hidden', 'out'],
        seed: options.adapter?.seed ?? 0,
      },
    });
    try {
      const toLocal = (data: Dataset) => ({ xs: data.xs, ys: data.ys, featureShape: [data.dim] });
      const result = trainLocally({
        model: adapted,
        data: toLocal(options.train),
        holdout: toLocal(options.holdout),
        plan: {
          epochs,
          batchSize,
          learningRate: options.learningRate ?? 0.03,
          fedProxMu: 0,
          optimizer: 'adam',
        },
        budget: { maxSteps: Number.MAX_SAFE_INTEGER, maxSeconds: 3600 },
        seed,
      });
      const trainMs = performance.now() - started;
      const scores = evaluate((x: tf.Tensor2D) => adapted.predict(x), options.test);
      return { mode: options.mode, ...scores, steps: result.steps, trainMs };
    } finally {
      adapted.dispose();
    }
  } finally {
    base.dispose();
  }
}
