import { FlotillaError } from '@flotilla/protocol';
import type * as tf from '@tensorflow/tfjs';
import { datasetSize, type LocalDataset } from './dataset.js';

/**
 * What a classifier takes and gives: the shape of one input example (the model's input shape
 * without the batch dimension) and the number of classes (the last dimension of its output).
 */
export interface ModelIo {
  featureShape: number[];
  classes: number;
}

/** The input example shape and class count of a single-input, single-output tfjs model. */
export function modelIo(model: tf.LayersModel): ModelIo {
  const input = model.inputs[0]?.shape;
  const output = model.outputs[0]?.shape;
  const classes = output?.[output.length - 1];
  if (model.inputs.length !== 1 || model.outputs.length !== 1 || !input || typeof classes !== 'number')
    throw new FlotillaError(
      'BAD_REQUEST',
      'the base model must have one input and one output of known width (a classifier)',
    );
  // tfjs reports the batch dimension as null; any other unknown dimension cannot be checked.
  const featureShape = input.slice(1).map((d) => (typeof d === 'number' ? d : -1));
  return { featureShape, classes };
}

/**
 * Throws BAD_REQUEST, naming `name` and both shapes, when `data` cannot train `io`: its
 * `featureShape` differs from the model's input (what would otherwise surface mid-round as a tfjs
 * `matMul` error), xs and ys disagree, or a label is not a class index of the model's output.
 */
export function assertDataFitsModel(data: LocalDataset, io: ModelIo, name: string): void {
  const expected = io.featureShape;
  const given = data.featureShape;
  const same =
    given.length === expected.length && given.every((d, i) => expected[i] === -1 || expected[i] === d);
  if (!same)
    throw new FlotillaError(
      'BAD_REQUEST',
      `${name}.featureShape is [${given.join(', ')}] but the task's base model takes examples of shape ` +
        `[${expected.map((d) => (d === -1 ? '?' : String(d))).join(', ')}]`,
    );
  const n = datasetSize(data);
  for (let i = 0; i < n; i++) {
    const label = data.ys[i];
    if (label === undefined || !Number.isInteger(label) || label < 0 || label >= io.classes)
      throw new FlotillaError(
        'BAD_REQUEST',
        `${name}.ys[${i}] is ${String(label)}, not a class index of the base model's ${io.classes} outputs [0, ${io.classes})`,
      );
  }
}
