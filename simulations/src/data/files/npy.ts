import { FlotillaError } from '@flotilla/protocol';

// The NPY format (NumPy Enhancement Proposal 1, numpy.lib.format): the magic string \x93NUMPY, a
// major and a minor version byte, the header length (uint16 little-endian in version 1, uint32
// in versions 2 and 3), then the header — a Python dict literal with keys 'descr' (the dtype, e.g.
// '<f4'), 'fortran_order' and 'shape', in ASCII (latin-1 for 2.0, UTF-8 for 3.0), padded with
// spaces and ended by '\n' so the data starts at a multiple of 64 bytes — then the raw data.

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

/** Element types the reader understands: NumPy's kind letter and item size. */
const DTYPES = {
  b1: { bytes: 1, read: (v: DataView, o: number) => (v.getUint8(o) === 0 ? 0 : 1) },
  i1: { bytes: 1, read: (v: DataView, o: number) => v.getInt8(o) },
  u1: { bytes: 1, read: (v: DataView, o: number) => v.getUint8(o) },
  i2: { bytes: 2, read: (v: DataView, o: number, le: boolean) => v.getInt16(o, le) },
  u2: { bytes: 2, read: (v: DataView, o: number, le: boolean) => v.getUint16(o, le) },
  i4: { bytes: 4, read: (v: DataView, o: number, le: boolean) => v.getInt32(o, le) },
  u4: { bytes: 4, read: (v: DataView, o: number, le: boolean) => v.getUint32(o, le) },
  i8: { bytes: 8, read: (v: DataView, o: number, le: boolean) => Number(v.getBigInt64(o, le)) },
  u8: { bytes: 8, read: (v: DataView, o: number, le: boolean) => Number(v.getBigUint64(o, le)) },
  f2: { bytes: 2, read: (v: DataView, o: number, le: boolean) => halfToFloat(v.getUint16(o, le)) },
  f4: { bytes: 4, read: (v: DataView, o: number, le: boolean) => v.getFloat32(o, le) },
  f8: { bytes: 8, read: (v: DataView, o: number, le: boolean) => v.getFloat64(o, le) },
} as const;
type DtypeCode = keyof typeof DTYPES;

/** An array read from an NPY file, its values in C (row-major) order. */
export interface NpyArray {
  /** The header's dtype string, e.g. '<f4'. */
  descr: string;
  shape: number[];
  /** Whether the file stored the data in Fortran (column-major) order; `values` is C order either way. */
  fortranOrder: boolean;
  version: 1 | 2 | 3;
  /** Every element as a float64 (int64 beyond 2^53 loses precision, as in any JS number). */
  values: Float64Array;
}

const bad = (message: string) => new FlotillaError('CORRUPT_FILE', `npy: ${message}`);

/** IEEE 754 binary16 → number. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Parses the header's dict literal: string keys; string, bool or int-tuple values. */
function parseHeader(text: string): { descr: string; fortranOrder: boolean; shape: number[] } {
  let i = 0;
  const skip = () => {
    while (i < text.length && /\s/.test(text[i] ?? '')) i++;
  };
  const expect = (ch: string) => {
    skip();
    if (text[i] !== ch) throw bad(`header: expected '${ch}' at ${i} in ${JSON.stringify(text)}`);
    i++;
  };
  const string = (): string => {
    skip();
    const quote = text[i];
    if (quote !== "'" && quote !== '"') throw bad(`header: expected a string at ${i}`);
    const end = text.indexOf(quote, i + 1);
    if (end < 0) throw bad('header: unterminated string');
    const value = text.slice(i + 1, end);
    i = end + 1;
    return value;
  };
  const value = (): string | boolean | number[] => {
    skip();
    if (text.startsWith('True', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('False', i)) {
      i += 5;
      return false;
    }
    if (text[i] === '(') {
      i++;
      const dims: number[] = [];
      for (;;) {
        skip();
        if (text[i] === ')') {
          i++;
          return dims;
        }
        const match = /^\d+/.exec(text.slice(i));
        if (!match) throw bad(`header: bad shape at ${i}`);
        dims.push(Number(match[0]));
        i += match[0].length;
        skip();
        if (text[i] === ',') i++;
      }
    }
    if (text[i] === "'" || text[i] === '"') return string();
    throw bad(`header: unsupported value at ${i} (structured dtypes are not supported)`);
  };
  const entries = new Map<string, string | boolean | number[]>();
  expect('{');
  for (;;) {
    skip();
    if (text[i] === '}') break;
    const key = string();
    expect(':');
    entries.set(key, value());
    skip();
    if (text[i] === ',') i++;
  }
  const descr = entries.get('descr');
  const fortranOrder = entries.get('fortran_order');
  const shape = entries.get('shape');
  if (typeof descr !== 'string') throw bad("header: 'descr' must be a dtype string");
  if (typeof fortranOrder !== 'boolean') throw bad("header: 'fortran_order' must be True or False");
  if (!Array.isArray(shape)) throw bad("header: 'shape' must be a tuple of integers");
  return { descr, fortranOrder, shape };
}

/** Reads an NPY file (versions 1.0, 2.0 and 3.0) of a numeric or boolean dtype. */
export function readNpy(bytes: Uint8Array): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, k) => bytes[k] !== b)) throw bad('not an NPY file (bad magic)');
  const major = bytes[6];
  if (major !== 1 && major !== 2 && major !== 3) throw bad(`unsupported format version ${String(major)}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthBytes) throw bad('truncated header length');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lengthBytes;
  const dataStart = start + headerLength;
  if (bytes.length < dataStart) throw bad('truncated header');
  const headerBytes = bytes.subarray(start, dataStart);
  const header = parseHeader(new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(headerBytes));
  const match = /^([<>|=])([a-z])(\d+)$/.exec(header.descr);
  const code = match ? `${match[2]}${match[3]}` : '';
  if (!match || !(code in DTYPES))
    throw bad(`unsupported dtype '${header.descr}' (numeric and boolean dtypes only)`);
  const dtype = DTYPES[code as DtypeCode];
  const littleEndian = match[1] !== '>';
  const count = header.shape.reduce((p, d) => p * d, 1);
  if (bytes.length - dataStart < count * dtype.bytes)
    throw bad(
      `data holds ${bytes.length - dataStart} bytes, shape ${JSON.stringify(header.shape)} needs ${count * dtype.bytes}`,
    );
  const raw = new Float64Array(count);
  for (let k = 0; k < count; k++) raw[k] = dtype.read(view, dataStart + k * dtype.bytes, littleEndian);
  return {
    descr: header.descr,
    shape: header.shape,
    fortranOrder: header.fortranOrder,
    version: major,
    values: header.fortranOrder ? fortranToC(raw, header.shape) : raw,
  };
}

/** Reorders column-major data into row-major order for the same shape. */
function fortranToC(values: Float64Array, shape: readonly number[]): Float64Array {
  const out = new Float64Array(values.length);
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  for (let c = 0; c < values.length; c++) {
    // index is the C-order multi-index of element c; its Fortran offset has the first axis fastest.
    let offset = 0;
    let stride = 1;
    for (let axis = 0; axis < rank; axis++) {
      offset += (index[axis] ?? 0) * stride;
      stride *= shape[axis] ?? 1;
    }
    out[c] = values[offset] ?? Number.NaN;
    for (let axis = rank - 1; axis >= 0; axis--) {
      index[axis] = (index[axis] ?? 0) + 1;
      if ((index[axis] ?? 0) < (shape[axis] ?? 1)) break;
      index[axis] = 0;
    }
  }
  return out;
}
