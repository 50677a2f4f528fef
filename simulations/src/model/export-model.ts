import type * as tf from '@tensorflow/tfjs';
import { FlotillaError, sha256Hex } from '@flotilla/protocol';
import { initBackend, modelIo, serializeBaseModel } from '@flotilla/client';
import { getBaseModel } from './base-model.js';
import { createCharRnn } from './char-rnn.js';
import { createCnn } from './cnn.js';
import { createMlp } from './mlp.js';
import { loadModelFiles } from './model-files.js';
import type { ModelSource } from './model-source.js';

/** A dense layer adapters can target, with its tfjs kernel shape [in, out]. */
export interface DenseLayer {
  name: string;
  in: number;
  out: number;
}

export interface ExportedModel {
  /** The `tfjs-layers-bundle` bytes (`tasks create --base`). */
  bytes: Uint8Array;
  /** SHA-256 of `bytes`: the task's `baseModel.digest`. */
  digest: string;
  /** One example's shape (the devices' `featureShape`). */
  inputShape: number[];
  classes: number;
  /** The candidates for `adapter.targetModules`, in model order. */
  denseLayers: DenseLayer[];
  /** Whether the weights were pre-trained (`trainOn`), or are initial / as loaded. */
  trained: boolean;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n < 1)
    throw new FlotillaError('BAD_REQUEST', `${name} must be a whole number >= 1`);
  return n;
}

function buildArchitecture(source: Extract<ModelSource, { kind: 'architecture' }>): tf.LayersModel {
  const { arch, seed } = source;
  if (arch === 'mlp') {
    if (source.input && source.input.length !== 1)
      throw new FlotillaError('BAD_REQUEST', 'input: the mlp takes one dimension (features), e.g. 784');
    return createMlp({
      inputDim: positive('input', source.input?.[0], 784),
      hidden: positive('hidden', source.hidden, 128),
      numClasses: positive('classes', source.classes, 10),
      seed,
    });
  }
  if (arch === 'cnn') {
    const input = source.input ?? [28, 28, 1];
    const [h, w, c] = input;
    if (input.length !== 3 || h === undefined || w === undefined || c === undefined)
      throw new FlotillaError('BAD_REQUEST', 'input: the cnn takes height x width x channels, e.g. 28x28x1');
    return createCnn({
      inputShape: [
        positive('input height', h, 28),
        positive('input width', w, 28),
        positive('input channels', c, 1),
      ],
      hidden: positive('hidden', source.hidden, 64),
      numClasses: positive('classes', source.classes, 10),
      seed,
    });
  }
  if (source.input && source.input.length !== 1)
    throw new FlotillaError(
      'BAD_REQUEST',
      'input: the char-rnn takes one dimension (sequence length), e.g. 80',
    );
  const vocabulary = positive('vocabulary', source.vocabulary, 80);
  return createCharRnn({
    sequenceLength: positive('input', source.input?.[0], 80),
    vocabularySize: vocabulary,
    numClasses: positive('classes', source.classes, vocabulary),
    hidden: positive('hidden', source.hidden, 64),
    seed,
  });
}

/** The dense layers of `model` with their kernel shapes: what adapters can target. */
export function denseLayers(model: tf.LayersModel): DenseLayer[] {
  const out: DenseLayer[] = [];
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'Dense') continue;
    const kernel = layer.getWeights()[0];
    const [inputs, units] = kernel?.shape ?? [];
    if (inputs !== undefined && units !== undefined) out.push({ name: layer.name, in: inputs, out: units });
  }
  return out;
}

/**
 * Writes a base model bundle from a built-in architecture (seeded; the mlp optionally pre-trained
 * on a built-in dataset's clean split) or from a tfjs model.json with its weight files, and says
 * what devices need to know about it: the example shape, the classes, the dense layers.
 */
export async function exportBaseModel(source: ModelSource): Promise<ExportedModel> {
  await initBackend({ logger: () => undefined });
  let model: tf.LayersModel;
  let bytes: Uint8Array | null = null;
  let trained = false;
  if (source.kind === 'model-json') {
    model = await loadModelFiles(source.path);
  } else if (source.trainOn !== undefined) {
    if (source.arch !== 'mlp')
      throw new FlotillaError('BAD_REQUEST', 'train-on: only the mlp is pre-trained on a built-in dataset');
    if (source.input !== undefined || source.classes !== undefined)
      throw new FlotillaError('BAD_REQUEST', 'train-on: the dataset sets the input width and the classes');
    const base = await getBaseModel({
      stateDir: source.stateDir ?? '.flotilla',
      config: { dataset: source.trainOn, seed: source.seed, hidden: positive('hidden', source.hidden, 128) },
    });
    model = base.model;
    bytes = base.bytes;
    trained = true;
  } else {
    model = buildArchitecture(source);
  }
  try {
    bytes ??= await serializeBaseModel(model);
    const io = modelIo(model);
    return {
      bytes,
      digest: sha256Hex(bytes),
      inputShape: io.featureShape,
      classes: io.classes,
      denseLayers: denseLayers(model),
      trained,
    };
  } finally {
    model.dispose();
  }
}
