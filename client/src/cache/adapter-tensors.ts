import { FlotillaError, decodeDeltaFile } from '@flotilla/protocol';

/** Named f32 tensors (row-major `values`, `shape` as in the safetensors file): an adapter or a delta. */
export type NamedTensors = Map<string, { shape: number[]; values: Float32Array }>;

/** Largest safetensors header accepted from a downloaded artifact, in bytes. */
const MAX_HEADER_BYTES = 1 << 20;

/**
 * Decodes an adapter or delta artifact into f32 tensors (F32, F16 and BF16 are widened; I8 is
 * dequantised with its `scale:<name>` metadata). Throws CORRUPT_FILE for a malformed file or a
 * non-finite value.
 */
export function decodeArtifact(bytes: Uint8Array): NamedTensors {
  const { tensors } = decodeDeltaFile(bytes, { maxHeaderBytes: MAX_HEADER_BYTES });
  for (const [name, tensor] of tensors) {
    for (const value of tensor.values)
      if (!Number.isFinite(value))
        throw new FlotillaError('CORRUPT_FILE', `tensor ${name} holds a non-finite value`);
  }
  return tensors;
}

/**
 * Returns `adapter + delta` as new buffers (neither input is touched). Every tensor of the delta
 * must exist in the adapter with the same shape; tensors the delta leaves out are copied as is.
 */
export function addDelta(adapter: NamedTensors, delta: NamedTensors): NamedTensors {
  for (const [name, tensor] of delta) {
    const base = adapter.get(name);
    if (!base)
      throw new FlotillaError('SHAPE_MISMATCH', `delta names tensor ${name}, which the adapter lacks`);
    if (!sameShape(base.shape, tensor.shape))
      throw new FlotillaError(
        'SHAPE_MISMATCH',
        `delta tensor ${name} has shape [${tensor.shape.join(', ')}], adapter has [${base.shape.join(', ')}]`,
      );
  }
  const out: NamedTensors = new Map();
  for (const [name, base] of adapter) {
    const values = base.values.slice();
    const step = delta.get(name);
    if (step) for (let i = 0; i < values.length; i++) values[i] = (values[i] ?? 0) + (step.values[i] ?? 0);
    out.set(name, { shape: [...base.shape], values });
  }
  return out;
}

/** A deep copy, so that callers can hand tensors out without sharing buffers. */
export function cloneTensors(tensors: NamedTensors): NamedTensors {
  return new Map([...tensors].map(([name, t]) => [name, { shape: [...t.shape], values: t.values.slice() }]));
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
