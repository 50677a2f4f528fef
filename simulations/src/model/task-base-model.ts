import { FlotillaError, canonicalJson, sha256Hex, utf8 } from '@flotilla/protocol';
import { serializeBaseModel } from '@flotilla/client';
import type * as tf from '@tensorflow/tfjs';
import { subsetDataset } from '../data/dataset.js';
import type { TaskData } from '../data/task-data.js';
import { createRng } from '../rng/random.js';
import type { Scenario } from '../scenario/schema.js';
import { scenarioSeeds } from '../scenario/seeds.js';
import { cachedBaseModel, getBaseModel, type BaseModel } from './base-model.js';
import { createCharRnn } from './char-rnn.js';
import { createCnn } from './cnn.js';
import { modelInputShape } from './input-shape.js';
import { createMlp, trainFullModel } from './mlp.js';
import { loadModelFiles } from './model-files.js';
import type { Architecture } from './model-source.js';

/** Bump when a built-in architecture or its training changes the weights for the same config. */
const TASK_BASE_RECIPE = 'flotilla-sim-task-base/v1';
/** Pre-training examples used at most (the first of the pre-training split). */
const MAX_PRETRAIN_EXAMPLES = 5000;

/** The scenario's architecture, or the default for its data (char-rnn for sequences, cnn for images, else mlp). */
export function scenarioArchitecture(scenario: Scenario, task: TaskData): Architecture {
  if (scenario.model.architecture) return scenario.model.architecture;
  if (task.kind === 'sequence') return 'char-rnn';
  // The built-in MNIST scenarios keep the MLP their results were measured with.
  if (task.kind === 'image' && scenario.dataset !== 'mnist-rotated' && scenario.dataset !== 'mnist-noisy')
    return 'cnn';
  return 'mlp';
}

/** Digest of the examples a base pre-trains on: part of its cache key, so other data retrains. */
function dataDigest(task: TaskData, count: number): string {
  const { pretrain } = task;
  const xs = new Uint8Array(pretrain.xs.buffer, pretrain.xs.byteOffset, count * pretrain.dim * 4);
  const ys = new Uint8Array(pretrain.ys.buffer, pretrain.ys.byteOffset, count * 4);
  return sha256Hex(utf8(`${sha256Hex(xs)}:${sha256Hex(ys)}`));
}

/** Builds an untrained built-in model for the task's examples. */
function buildModel(architecture: Architecture, scenario: Scenario, task: TaskData): tf.LayersModel {
  const shape = task.pool.shape ?? [task.pool.dim];
  const { numClasses } = task.pool;
  const seed = scenarioSeeds(scenario).model;
  const { hidden } = scenario.model;
  switch (architecture) {
    case 'mlp':
      return createMlp({ inputDim: task.pool.dim, hidden, numClasses, seed });
    case 'cnn': {
      const [h, w, c] = shape;
      if (shape.length !== 3 || h === undefined || w === undefined || c === undefined)
        throw new FlotillaError(
          'BAD_REQUEST',
          `the cnn takes images [height, width, channels]; the examples have shape [${shape.join(', ')}] (set source.exampleShape)`,
        );
      return createCnn({ inputShape: [h, w, c], hidden, numClasses, seed });
    }
    case 'char-rnn': {
      const [length] = shape;
      if (shape.length !== 1 || length === undefined || task.vocabularySize === null)
        throw new FlotillaError(
          'BAD_REQUEST',
          'the char-rnn takes token sequences (text, LEAF shakespeare or sent140 data)',
        );
      return createCharRnn({
        sequenceLength: length,
        vocabularySize: task.vocabularySize,
        numClasses,
        embedding: scenario.model.embedding,
        hidden,
        cell: scenario.model.cell,
        seed,
      });
    }
  }
}

/**
 * The scenario's base model: the tfjs model at `model.path` as it is, or a built-in architecture
 * pre-trained on the task's pre-training split (cached by architecture, options and a digest of
 * that data). The built-in MNIST and synthetic scenarios with the MLP keep their original cache
 * entries and weights.
 */
export async function taskBaseModel(options: {
  scenario: Scenario;
  task: TaskData;
  stateDir: string;
}): Promise<BaseModel> {
  const { scenario, task, stateDir } = options;
  if (scenario.model.path !== undefined) {
    const model = await loadModelFiles(scenario.model.path);
    modelInputShape(model, task.pool.dim);
    const units = model.outputs[0]?.shape[1];
    if (units !== task.pool.numClasses)
      throw new FlotillaError(
        'SHAPE_MISMATCH',
        `${scenario.model.path} outputs ${String(units)} classes, the data has ${task.pool.numClasses}`,
      );
    const bytes = await serializeBaseModel(model);
    const digest = sha256Hex(bytes);
    return {
      model,
      bytes,
      digest,
      configDigest: digest,
      path: scenario.model.path,
      cached: true,
      backend: 'file',
      trainMs: 0,
      config: { path: scenario.model.path },
    };
  }
  const architecture = scenarioArchitecture(scenario, task);
  const { dataset } = scenario;
  const seeds = scenarioSeeds(scenario);
  if (!scenario.model.pretrained) {
    // From scratch (McMahan et al. 2017): the seeded initial weights, trained by the fleet alone.
    const config = {
      recipe: TASK_BASE_RECIPE,
      architecture,
      pretrained: false,
      seed: seeds.model,
      hidden: scenario.model.hidden,
      embedding: scenario.model.embedding,
      cell: scenario.model.cell,
      shape: task.pool.shape ?? [task.pool.dim],
      numClasses: task.pool.numClasses,
      vocabularySize: task.vocabularySize,
    };
    return cachedBaseModel({
      stateDir,
      configDigest: sha256Hex(utf8(canonicalJson(config))),
      config,
      train: () => Promise.resolve(buildModel(architecture, scenario, task)),
    });
  }
  if (
    architecture === 'mlp' &&
    (dataset === 'mnist-rotated' || dataset === 'mnist-noisy' || dataset === 'synthetic')
  )
    return getBaseModel({
      stateDir,
      config: {
        dataset,
        seed: seeds.model,
        // Written only when it differs, so configs from before separate seeds keep their cache entry.
        ...(seeds.data !== seeds.model ? { dataSeed: seeds.data } : {}),
        hidden: scenario.model.hidden,
        epochs: scenario.model.baseEpochs,
        // The synthetic task's shape decides the base model's input (MNIST's is fixed).
        ...(dataset === 'synthetic'
          ? { syntheticExamples: scenario.data.syntheticExamples, syntheticDim: scenario.data.syntheticDim }
          : {}),
      },
    });
  const count = Math.min(MAX_PRETRAIN_EXAMPLES, task.pretrain.n);
  if (count === 0)
    throw new FlotillaError(
      'BAD_REQUEST',
      'no pre-training examples for the built-in base model: raise source.pretrainFraction or give model.path',
    );
  const config = {
    recipe: TASK_BASE_RECIPE,
    architecture,
    seed: seeds.model,
    hidden: scenario.model.hidden,
    embedding: scenario.model.embedding,
    cell: scenario.model.cell,
    epochs: scenario.model.baseEpochs,
    batchSize: 64,
    // Adam's step: character models learn faster with a larger one (the MLP keeps the old 0.002).
    learningRate: architecture === 'char-rnn' ? 0.01 : 0.002,
    shape: task.pool.shape ?? [task.pool.dim],
    numClasses: task.pool.numClasses,
    vocabularySize: task.vocabularySize,
    data: dataDigest(task, count),
  };
  return cachedBaseModel({
    stateDir,
    configDigest: sha256Hex(utf8(canonicalJson(config))),
    config,
    train: async () => {
      const model = buildModel(architecture, scenario, task);
      await trainFullModel({
        model,
        data: subsetDataset(
          task.pretrain,
          Array.from({ length: count }, (_, i) => i),
        ),
        epochs: config.epochs,
        batchSize: config.batchSize,
        learningRate: config.learningRate,
        rng: createRng(seeds.model).fork('base-model/order'),
      });
      return model;
    },
  });
}
