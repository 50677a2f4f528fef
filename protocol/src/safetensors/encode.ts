import { utf8 } from '../encoding.js';
import { FlotillaError } from '../errors.js';
import { DTYPE_BYTES, DTYPE_ENUM_RANK, elementCount, isSafetensorsDtype } from './dtypes.js';
import { METADATA_KEY, type TensorEntry } from './types.js';
import { at } from '../checked-index.js';

export interface EncodeSafetensorsInput {
  tensors: Map<string, TensorEntry>;
  /** Free-form strings stored under `__metadata__`; omitted from the header when empty. */
  metadata?: Record<string, string>;
}

/** Compares strings by their UTF-8 bytes, as Rust's `String: Ord` does. */
function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const x = utf8(a);
  const y = utf8(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = at(x, i) - at(y, i);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function checkEntry(name: string, entry: TensorEntry): void {
  if (name === METADATA_KEY)
    throw new FlotillaError('BAD_REQUEST', `${METADATA_KEY} cannot be a tensor name`);
  if (!isSafetensorsDtype(entry.dtype)) {
    throw new FlotillaError(
      'BAD_REQUEST',
      `tensor ${JSON.stringify(name)} has unsupported dtype ${String(entry.dtype)}`,
    );
  }
  const count = elementCount(entry.shape);
  if (count === null) {
    throw new FlotillaError(
      'BAD_REQUEST',
      `tensor ${JSON.stringify(name)} has an invalid shape [${entry.shape.join(', ')}]`,
    );
  }
  const expected = count * DTYPE_BYTES[entry.dtype];
  if (entry.data.length !== expected) {
    throw new FlotillaError(
      'SHAPE_MISMATCH',
      `tensor ${JSON.stringify(name)} has ${entry.data.length} bytes but ${entry.dtype}[${entry.shape.join(', ')}] needs ${expected}`,
    );
  }
}

/**
 * Writes a safetensors file byte for byte as the reference implementation (huggingface/safetensors,
 * `serialize` in safetensors/src/tensor.rs) does: tensors ordered by dtype (the reference's enum
 * order, descending, which puts wider dtypes first so each stays aligned) then by name; header keys
 * `dtype`, `shape`, `data_offsets`; header padded with spaces to a multiple of 8 bytes.
 * The reference keeps metadata in a HashMap (unordered); here its keys are sorted so that equal
 * inputs always give equal bytes (and equal digests).
 * Throws `BAD_REQUEST` for invalid names, dtypes, shapes or metadata, `SHAPE_MISMATCH` when a
 * tensor's byte length does not match its shape.
 */
export function encodeSafetensors(input: EncodeSafetensorsInput): Uint8Array {
  const entries = [...input.tensors];
  for (const [name, entry] of entries) checkEntry(name, entry);
  entries.sort(
    ([nameA, a], [nameB, b]) =>
      DTYPE_ENUM_RANK[b.dtype] - DTYPE_ENUM_RANK[a.dtype] || compareUtf8(nameA, nameB),
  );

  const parts: string[] = [];
  const metadataKeys = Object.keys(input.metadata ?? {}).sort(compareUtf8);
  if (metadataKeys.length > 0) {
    const fields = metadataKeys.map((key) => {
      const value: unknown = input.metadata?.[key];
      if (typeof value !== 'string') {
        throw new FlotillaError('BAD_REQUEST', `metadata value for ${JSON.stringify(key)} must be a string`);
      }
      return `${JSON.stringify(key)}:${JSON.stringify(value)}`;
    });
    parts.push(`"${METADATA_KEY}":{${fields.join(',')}}`);
  }
  let offset = 0;
  for (const [name, entry] of entries) {
    const end = offset + entry.data.length;
    // JSON.stringify escapes strings as serde_json does (", \, control characters as \n or \u00xx).
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${entry.dtype}","shape":[${entry.shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const headerText = utf8(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(headerText.length / 8) * 8;

  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength % 0x1_0000_0000, true);
  view.setUint32(4, Math.floor(headerLength / 0x1_0000_0000), true);
  out.set(headerText, 8);
  out.fill(0x20, 8 + headerText.length, 8 + headerLength);
  let cursor = 8 + headerLength;
  for (const [, entry] of entries) {
    out.set(entry.data, cursor);
    cursor += entry.data.length;
  }
  return out;
}
