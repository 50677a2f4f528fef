import { FlotillaError } from '../errors.js';
import { DTYPE_BYTES, elementCount, isSafetensorsDtype, SAFETENSORS_DTYPES } from './dtypes.js';
import { JsonNumber, parseHeaderJson, type JsonValue } from './json-header.js';
import {
  METADATA_KEY,
  type DecodeSafetensorsOptions,
  type SafetensorsFile,
  type TensorEntry,
} from './types.js';

/** Default header cap in bytes: the reference implementation's MAX_HEADER_SIZE. */
export const DEFAULT_MAX_HEADER_BYTES = 100_000_000;

const NON_NEGATIVE_INTEGER = /^(?:0|[1-9][0-9]*)$/;

function corrupt(message: string, details?: Record<string, unknown>): never {
  throw new FlotillaError('CORRUPT_FILE', `corrupt safetensors file: ${message}`, { details });
}

/** A JSON number that is a non-negative integer within Number.MAX_SAFE_INTEGER, else null. */
function safeIndex(value: JsonValue | undefined): number | null {
  if (!(value instanceof JsonNumber) || !NON_NEGATIVE_INTEGER.test(value.raw)) return null;
  if (value.raw.length > 16) return null; // > 9_999_999_999_999_999 > MAX_SAFE_INTEGER
  const n = Number(value.raw);
  return Number.isSafeInteger(n) ? n : null;
}

interface TensorInfo {
  name: string;
  entry: Omit<TensorEntry, 'data'>;
  begin: number;
  end: number;
}

function readTensorInfo(name: string, value: JsonValue): TensorInfo {
  if (!(value instanceof Map)) corrupt(`tensor ${JSON.stringify(name)} is not an object`);
  const dtype = value.get('dtype');
  if (typeof dtype !== 'string') corrupt(`tensor ${JSON.stringify(name)} has no string dtype`);
  if (!isSafetensorsDtype(dtype)) {
    corrupt(`tensor ${JSON.stringify(name)} has unknown or unsupported dtype ${JSON.stringify(dtype)}`, {
      supported: SAFETENSORS_DTYPES,
    });
  }
  const shapeValue = value.get('shape');
  if (!Array.isArray(shapeValue)) corrupt(`tensor ${JSON.stringify(name)} has no shape array`);
  const shape: number[] = [];
  for (const dim of shapeValue) {
    const n = safeIndex(dim);
    if (n === null)
      corrupt(`tensor ${JSON.stringify(name)} has a shape entry that is not a non-negative integer`);
    shape.push(n);
  }
  const offsets = value.get('data_offsets');
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    corrupt(`tensor ${JSON.stringify(name)}: data_offsets must be [begin, end]`);
  }
  const begin = safeIndex(offsets[0]);
  const end = safeIndex(offsets[1]);
  if (begin === null || end === null)
    corrupt(`tensor ${JSON.stringify(name)}: data_offsets must be two integers`);
  if (end < begin)
    corrupt(`tensor ${JSON.stringify(name)}: data_offsets end ${end} is before begin ${begin}`);
  const count = elementCount(shape);
  if (count === null) corrupt(`tensor ${JSON.stringify(name)}: shape [${shape.join(', ')}] overflows`);
  const expected = count * DTYPE_BYTES[dtype];
  if (!Number.isSafeInteger(expected)) corrupt(`tensor ${JSON.stringify(name)}: byte size overflows`);
  if (end - begin !== expected) {
    corrupt(
      `tensor ${JSON.stringify(name)} holds ${end - begin} bytes but ${dtype}[${shape.join(', ')}] needs ${expected}`,
    );
  }
  return { name, entry: { dtype, shape }, begin, end };
}

function readMetadata(value: JsonValue): Record<string, string> {
  if (!(value instanceof Map)) corrupt(`${METADATA_KEY} is not an object`);
  // A prototype-less record: keys such as "__proto__" stay ordinary data.
  const metadata = Object.create(null) as Record<string, string>;
  for (const [key, item] of value) {
    if (typeof item !== 'string') corrupt(`${METADATA_KEY} value for ${JSON.stringify(key)} is not a string`);
    metadata[key] = item;
  }
  return metadata;
}

function readHeaderLength(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  // Two u32 halves: exact up to 2^53, and anything larger is refused by the cap anyway.
  return view.getUint32(4, true) * 0x1_0000_0000 + view.getUint32(0, true);
}

function decodeHeaderText(bytes: Uint8Array): string {
  try {
    // ignoreBOM keeps a leading BOM so it fails as JSON, as it does in the reference.
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return corrupt('header is not valid UTF-8');
  }
}

/**
 * Reads a safetensors file. Every way a file can be malformed (truncated, oversized header, bad
 * JSON, unknown dtype, bad shape or offsets, gaps, overlaps, trailing bytes, duplicate names,
 * non-string metadata) throws `FlotillaError('CORRUPT_FILE')`; nothing is read partially.
 * Tensor `data` are views into `bytes`.
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  options: DecodeSafetensorsOptions = {},
): SafetensorsFile {
  const maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (bytes.length < 8) corrupt(`file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  const headerLength = readHeaderLength(bytes);
  if (headerLength > maxHeaderBytes) {
    corrupt(`header length ${headerLength} exceeds the ${maxHeaderBytes}-byte cap`, {
      headerLength,
      maxHeaderBytes,
    });
  }
  if (8 + headerLength > bytes.length) {
    corrupt(`header length ${headerLength} runs past the end of the ${bytes.length}-byte file`);
  }
  const header = parseHeaderJson(decodeHeaderText(bytes.subarray(8, 8 + headerLength)));
  if (!(header instanceof Map)) corrupt('header is not a JSON object');

  let metadata = Object.create(null) as Record<string, string>;
  const infos: TensorInfo[] = [];
  for (const [name, value] of header) {
    if (name === METADATA_KEY) metadata = readMetadata(value);
    else infos.push(readTensorInfo(name, value));
  }

  // Like the reference: sorted by offsets, the tensors must tile the data section exactly, with
  // no gap, no overlap and nothing after the last one.
  infos.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  let cursor = 0;
  const tensors = new Map<string, TensorEntry>();
  for (const info of infos) {
    if (info.begin !== cursor) {
      const problem = info.begin < cursor ? 'overlaps the previous tensor' : 'leaves a gap before it';
      corrupt(`tensor ${JSON.stringify(info.name)} at offset ${info.begin} ${problem} (expected ${cursor})`);
    }
    if (info.end > dataLength) {
      corrupt(
        `tensor ${JSON.stringify(info.name)} ends at ${info.end}, past the ${dataLength}-byte data section`,
      );
    }
    cursor = info.end;
    const data = bytes.subarray(dataStart + info.begin, dataStart + info.end);
    tensors.set(info.name, { ...info.entry, data });
  }
  if (cursor !== dataLength) {
    corrupt(`tensors cover ${cursor} bytes but the data section has ${dataLength}`, {
      covered: cursor,
      dataLength,
    });
  }
  return { tensors, metadata: { ...metadata } };
}
