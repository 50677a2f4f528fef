import type * as tf from '@tensorflow/tfjs';
import { FlotillaError } from '@flotilla/protocol';

/**
 * The shape of one example as `model` takes it: its input shape without the batch axis, which
 * must hold exactly `dim` values (an MLP takes an image flattened, a CNN as [h, w, c]).
 */
export function modelInputShape(model: tf.LayersModel, dim: number): number[] {
  const declared = model.inputs[0]?.shape.slice(1) ?? [];
  const known = declared.filter((d): d is number => d !== null);
  const free = declared.length - known.length;
  const size = known.reduce((p, d) => p * d, 1);
  if (free > 1 || (free === 0 && size !== dim) || (free === 1 && dim % size !== 0))
    throw new FlotillaError(
      'SHAPE_MISMATCH',
      `the base model takes examples of shape [${declared.map((d) => d ?? '?').join(', ')}], the data's have ${dim} values`,
    );
  return declared.map((d) => d ?? dim / size);
}
