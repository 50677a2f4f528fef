import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { canonicalJson, sha256Hex, utf8 } from '@flotilla/protocol';
import { initBackend, loadBaseModel, serializeBaseModel } from '@flotilla/client';
import { subsetDataset } from '../data/dataset.js';
import { loadDomains, type DatasetName, type Domains } from '../data/domains.js';
import { createRng } from '../rng/random.js';
import { evaluate, type EvaluationResult } from './evaluate.js';
import { createMlp, trainFullModel } from './mlp.js';

/** Everything that determines the base model's weights; its canonical-JSON digest names the cache file. */
export const BaseModelConfigSchema = z.object({
  dataset: z.enum(['mnist-rotated', 'mnist-noisy', 'synthetic']),
  /** Seed of the initial weights and the training order (and of the data when `dataSeed` is absent). */
  seed: z.number().int().nonnegative(),
  /** Seed of the data split the base trains on. Default `seed`. */
  dataSeed: z.number().int().nonnegative().optional(),
  /** Hidden units. Default 128. */
  hidden: z.number().int().min(1).default(128),
  /** Epochs over the clean training split. Default 3. */
  epochs: z.number().int().min(1).default(3),
  /** Default 64. */
  batchSize: z.number().int().min(1).default(64),
  /** Adam learning rate. Default 0.002. */
  learningRate: z.number().positive().default(0.002),
  /** Clean training examples used (the first ones of the split). Default 5000. */
  maxExamples: z.number().int().min(1).default(5000),
  /** Domain options that change the clean data (synthetic only; MNIST's clean domain is fixed). */
  syntheticExamples: z.number().int().min(100).default(6000),
  syntheticDim: z.number().int().min(2).default(32),
});
export type BaseModelConfig = z.infer<typeof BaseModelConfigSchema>;
export type BaseModelConfigInput = z.input<typeof BaseModelConfigSchema>;

/** Bump when training code changes in a way that changes the weights for the same config. */
const BASE_MODEL_RECIPE = 'flotilla-sim-base/v1';

/** Options for {@link getBaseModel}. */
export interface GetBaseModelOptions {
  /** State directory; the bundle is cached as `<stateDir>/cache/base-<configDigest>.bundle`. */
  stateDir: string;
  config: BaseModelConfigInput;
}

/** A ready base model with its content address. */
export interface BaseModel {
  model: tf.LayersModel;
  /** The `tfjs-layers-bundle` bytes. */
  bytes: Uint8Array;
  /** SHA-256 of `bytes`: the task's base model digest. */
  digest: string;
  /** SHA-256 of the canonical config: the cache key. */
  configDigest: string;
  path: string;
  /** True when the bundle came from the cache (disk or this process). */
  cached: boolean;
  /** The tfjs backend active while the model was (or would have been) trained. */
  backend: string;
  /** Training wall time in ms (0 when cached). */
  trainMs: number;
  /** What determined the weights (its canonical JSON digest is `configDigest`). */
  config: Readonly<Record<string, unknown>>;
}

/** Digest of the canonical JSON of a config (with defaults applied) and the recipe version. */
export function baseModelConfigDigest(config: BaseModelConfigInput): string {
  const parsed = BaseModelConfigSchema.parse(config);
  return sha256Hex(utf8(canonicalJson({ recipe: BASE_MODEL_RECIPE, ...parsed })));
}

const memory = new Map<string, Uint8Array>();

function domainOptions(config: BaseModelConfig): {
  dataset: DatasetName;
  seed: number;
  syntheticExamples: number;
  syntheticDim: number;
} {
  return {
    dataset: config.dataset,
    seed: config.dataSeed ?? config.seed,
    syntheticExamples: config.syntheticExamples,
    syntheticDim: config.syntheticDim,
  };
}

/**
 * The base model of a config: from this process's memory, else from the on-disk cache, else
 * trained deterministically on the clean training split (seeded initialisers, batch order from
 * the seeded stream `base-model/order`) and written to the cache atomically.
 */
export async function getBaseModel(options: GetBaseModelOptions): Promise<BaseModel> {
  const config = BaseModelConfigSchema.parse(options.config);
  return cachedBaseModel({
    stateDir: options.stateDir,
    configDigest: baseModelConfigDigest(config),
    config,
    train: async () => {
      const domains = loadDomains(domainOptions(config));
      const clean = domains.clean.train;
      const data = subsetDataset(
        clean,
        Array.from({ length: Math.min(config.maxExamples, clean.n) }, (_, i) => i),
      );
      const model = createMlp({
        inputDim: data.dim,
        hidden: config.hidden,
        numClasses: data.numClasses,
        seed: config.seed,
      });
      await trainFullModel({
        model,
        data,
        epochs: config.epochs,
        batchSize: config.batchSize,
        learningRate: config.learningRate,
        rng: createRng(config.seed).fork('base-model/order'),
      });
      return model;
    },
  });
}

/**
 * A base model by content: from this process's memory, else from `<stateDir>/cache/base-<configDigest>.bundle`,
 * else `train()`ed, serialized and written to the cache atomically.
 */
export async function cachedBaseModel(options: {
  stateDir: string;
  configDigest: string;
  config: Readonly<Record<string, unknown>>;
  train: () => Promise<tf.LayersModel>;
}): Promise<BaseModel> {
  const { configDigest } = options;
  const dir = join(options.stateDir, 'cache');
  const path = join(dir, `base-${configDigest}.bundle`);
  const backend = (await initBackend()).name;
  let bytes = memory.get(path) ?? (existsSync(path) ? new Uint8Array(readFileSync(path)) : undefined);
  let cached = true;
  let trainMs = 0;
  if (bytes === undefined) {
    cached = false;
    const started = performance.now();
    const trained = await options.train();
    bytes = await serializeBaseModel(trained);
    trained.dispose();
    trainMs = performance.now() - started;
    mkdirSync(dir, { recursive: true });
    const temporary = `${path}.${process.pid}.tmp`;
    writeFileSync(temporary, bytes);
    renameSync(temporary, path);
  }
  memory.set(path, bytes);
  const model = await loadBaseModel(bytes);
  return {
    model,
    bytes,
    digest: sha256Hex(bytes),
    configDigest,
    path,
    cached,
    backend,
    trainMs,
    config: options.config,
  };
}

/** Base accuracy on the clean and the shifted test sets (the gap adapters should close). */
export interface BaseAccuracy {
  clean: EvaluationResult;
  shifted: EvaluationResult;
}

/** Evaluates the base on `domains` (from {@link loadDomains} with the scenario's options). */
export function evaluateBaseModel(base: BaseModel, domains: Domains): BaseAccuracy {
  return {
    clean: evaluate(base.model, domains.clean.test),
    shifted: evaluate(base.model, domains.shifted.test),
  };
}
