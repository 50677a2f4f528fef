// Just enough of the WebAssembly binary format (core spec 2.0, section 5) to assemble the SIMD
// kernels by hand: there is no wat2wasm at build time, and a few dozen bytes do not justify one.

/** Unsigned LEB128, the encoding of every count, index and memarg offset in the binary format. */
export function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/** Value type codes. */
export const I32 = 0x7f;
export const F64 = 0x7c;
export const V128 = 0x7b;

/** Opcodes used by the kernels (plain ones as bytes, SIMD ones via `simd`). */
export const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  brIf: (depth: number): number[] => [0x0d, depth],
  localGet: (i: number): number[] => [0x20, ...uleb(i)],
  localSet: (i: number): number[] => [0x21, ...uleb(i)],
  localTee: (i: number): number[] => [0x22, ...uleb(i)],
  i32Const: (v: number): number[] => [0x41, ...sleb(v)],
  i32Add: [0x6a],
  i32Shl: [0x74],
  i32LtU: [0x49],
  i32GeU: [0x4f],
};

/** A SIMD instruction: prefix 0xfd then the opcode as LEB128. */
export function simd(opcode: number, ...immediates: number[]): number[] {
  return [0xfd, ...uleb(opcode), ...immediates];
}

/** SIMD opcodes used by the kernels (memory ones take `align log2, offset`). */
export const simdOp = {
  v128Load: (offset: number): number[] => simd(0x00, 4, ...uleb(offset)),
  v128Store: (offset: number): number[] => simd(0x0b, 4, ...uleb(offset)),
  v128Load64Zero: (offset: number): number[] => simd(0x5d, 3, ...uleb(offset)),
  f64x2Splat: simd(0x14),
  f64x2PromoteLowF32x4: simd(0x5f),
  f64x2Add: simd(0xf0),
  f64x2Mul: simd(0xf2),
};

function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

export interface WasmFunction {
  name: string;
  params: number[];
  /** Local declarations as [count, type] runs, after the params. */
  locals: [number, number][];
  /** Instructions, without the final `end`. */
  code: number[];
}

/** A module of exported functions with no results, plus an exported growable `memory`. */
export function assembleModule(functions: readonly WasmFunction[]): Uint8Array<ArrayBuffer> {
  const section = (id: number, content: number[]): number[] => [id, ...uleb(content.length), ...content];
  const vector = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
  const name = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
  const types = functions.map((f) => [0x60, ...uleb(f.params.length), ...f.params, 0]);
  const bodies = functions.map((f) => {
    const body = [...vector(f.locals.map(([count, type]) => [...uleb(count), type])), ...f.code, ...op.end];
    return [...uleb(body.length), ...body];
  });
  const exports = [
    ...functions.map((f, index) => [...name(f.name), 0x00, ...uleb(index)]),
    [...name('memory'), 0x02, 0],
  ];
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vector(types)),
    ...section(3, vector(functions.map((_, index) => uleb(index)))),
    ...section(5, [1, 0x00, 1]), // one memory: min 1 page, no max
    ...section(7, vector(exports)),
    ...section(10, vector(bodies)),
  ]);
}
