import { FlotillaError, f32At, type NamedTensor } from '@flotilla/protocol';

export type TensorMap = Map<string, NamedTensor>;

/** `op(a, b)` element by element for every tensor of `a`; `b` must hold the same names and sizes. */
function elementwise(
  a: TensorMap,
  b: TensorMap,
  verb: string,
  op: (x: number, y: number) => number,
): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, left] of a) {
    const right = b.get(name);
    if (!right || right.values.length !== left.values.length) {
      throw new FlotillaError('SHAPE_MISMATCH', `cannot ${verb}: ${name} differs between the two adapters`);
    }
    const values = new Float32Array(left.values.length);
    for (let i = 0; i < values.length; i++) values[i] = op(f32At(left.values, i), f32At(right.values, i));
    out.set(name, { shape: [...left.shape], values });
  }
  return out;
}

/** a − b per tensor; both maps must hold the same names and shapes. */
export function subtractTensors(a: TensorMap, b: TensorMap): TensorMap {
  return elementwise(a, b, 'subtract', (x, y) => x - y);
}

/** a + b per tensor. */
export function addTensors(a: TensorMap, b: TensorMap): TensorMap {
  return elementwise(a, b, 'add', (x, y) => x + y);
}

/**
 * The tensors of a delta that change anything (some element is not 0): a device adds only these
 * to the adapter it holds. An FFA-LoRA delta is then B alone, A being frozen.
 */
export function changedTensors(delta: TensorMap): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, tensor] of delta) if (tensor.values.some((v) => v !== 0)) out.set(name, tensor);
  return out;
}
