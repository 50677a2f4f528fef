import { FlotillaError, type NamedTensor } from '@flotilla/protocol';

/** Where one named tensor sits in a flattened vector (row-major values of `shape`). */
export interface TensorSlot {
  name: string;
  shape: number[];
  /** Index of the tensor's first value in the flat vector. */
  offset: number;
  /** Number of values, the product of `shape`. */
  length: number;
}

export type TensorLayout = TensorSlot[];

export type { NamedTensor };

/**
 * Concatenates named tensors in code-unit order of their names, so every update of one adapter
 * flattens the same way. With `expected`, throws SHAPE_MISMATCH unless the layouts are identical.
 * `allocate` provides the output vector (e.g. from a kernel arena); default a new Float32Array.
 */
export function flattenTensors(
  map: ReadonlyMap<string, NamedTensor>,
  options: { expected?: TensorLayout; allocate?: (length: number) => Float32Array } = {},
): { values: Float32Array; layout: TensorLayout } {
  const layout = tensorLayout(map);
  if (options.expected !== undefined) assertSameLayout(layout, options.expected);
  const length = layout.reduce((sum, slot) => sum + slot.length, 0);
  const values = options.allocate?.(length) ?? new Float32Array(length);
  for (const slot of layout) {
    const tensor = map.get(slot.name);
    if (tensor !== undefined) values.set(tensor.values, slot.offset);
  }
  return { values, layout };
}

/**
 * Where each tensor of `map` would sit in {@link flattenTensors}' vector, without building it.
 * Throws SHAPE_MISMATCH when a shape does not hold its tensor's values.
 */
export function tensorLayout(map: ReadonlyMap<string, NamedTensor>): TensorLayout {
  const names = [...map.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const layout: TensorLayout = [];
  let offset = 0;
  for (const name of names) {
    const tensor = map.get(name);
    if (tensor === undefined) continue;
    const length = tensor.shape.reduce((product, dim) => product * dim, 1);
    if (!tensor.shape.every((dim) => Number.isInteger(dim) && dim >= 0) || length !== tensor.values.length) {
      throw new FlotillaError(
        'SHAPE_MISMATCH',
        `tensor ${name} has shape [${tensor.shape.join(', ')}] but ${tensor.values.length} values`,
      );
    }
    layout.push({ name, shape: [...tensor.shape], offset, length });
    offset += length;
  }
  return layout;
}

/** Splits a flat vector back into named tensors (copies). Throws SHAPE_MISMATCH on a length mismatch. */
export function unflattenTensors(values: Float32Array, layout: TensorLayout): Map<string, NamedTensor> {
  const total = layout.reduce((sum, slot) => sum + slot.length, 0);
  if (total !== values.length) {
    throw new FlotillaError('SHAPE_MISMATCH', `layout covers ${total} values, vector has ${values.length}`);
  }
  const out = new Map<string, NamedTensor>();
  for (const slot of layout) {
    out.set(slot.name, {
      shape: [...slot.shape],
      values: values.slice(slot.offset, slot.offset + slot.length),
    });
  }
  return out;
}

/** Throws SHAPE_MISMATCH naming the first difference between two layouts. */
export function assertSameLayout(actual: TensorLayout, expected: TensorLayout): void {
  const count = Math.max(actual.length, expected.length);
  for (let i = 0; i < count; i++) {
    const a = actual[i];
    const e = expected[i];
    const same =
      a !== undefined &&
      e !== undefined &&
      a.name === e.name &&
      a.offset === e.offset &&
      a.length === e.length &&
      a.shape.length === e.shape.length &&
      a.shape.every((dim, k) => dim === e.shape[k]);
    if (!same) {
      const describe = (s: TensorSlot | undefined): string =>
        s === undefined ? 'nothing' : `${s.name} [${s.shape.join(', ')}]`;
      throw new FlotillaError(
        'SHAPE_MISMATCH',
        `layout differs at slot ${i}: ${describe(a)} vs ${describe(e)}`,
      );
    }
  }
}
