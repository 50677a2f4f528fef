import type { NamedTensor } from '@flotilla/protocol';
import { FlotillaError } from '@flotilla/protocol';

/** One named adapter tensor: row-major f32 values and its shape (PEFT layout). */
export type { NamedTensor };

/** PEFT tensor name (`base_model.model.<module>.lora_A.weight`, …) → tensor. */
export type NamedTensorMap = Map<string, NamedTensor>;

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Checks that `given` has exactly the names of `expected`, each with the expected shape and a
 * matching number of finite values. `partial` allows a subset of the names.
 */
export function checkTensorMap(
  given: ReadonlyMap<string, NamedTensor>,
  expected: ReadonlyMap<string, readonly number[]>,
  options: { partial?: boolean } = {},
): void {
  for (const [name, tensor] of given) {
    const shape = expected.get(name);
    if (shape === undefined) throw new FlotillaError('SHAPE_MISMATCH', `unexpected adapter tensor '${name}'`);
    if (!sameShape(tensor.shape, shape)) {
      throw new FlotillaError(
        'SHAPE_MISMATCH',
        `adapter tensor '${name}' has shape [${tensor.shape.join(', ')}], expected [${shape.join(', ')}]`,
      );
    }
    const count = shape.reduce((p, d) => p * d, 1);
    if (tensor.values.length !== count) {
      throw new FlotillaError(
        'SHAPE_MISMATCH',
        `adapter tensor '${name}' has ${tensor.values.length} values, expected ${count}`,
      );
    }
    for (const v of tensor.values) {
      if (!Number.isFinite(v))
        throw new FlotillaError('NON_FINITE', `adapter tensor '${name}' holds a non-finite value`);
    }
  }
  if (options.partial !== true) {
    for (const name of expected.keys()) {
      if (!given.has(name)) throw new FlotillaError('SHAPE_MISMATCH', `adapter tensor '${name}' is missing`);
    }
  }
}
