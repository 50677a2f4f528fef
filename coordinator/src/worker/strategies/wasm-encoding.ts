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
  /** Memory access: `align` is log2 of the natural alignment, `offset` a constant byte offset. */
  i32Load: (offset = 0): number[] => [0x28, 2, ...uleb(offset)],
  f32Load: (offset = 0): number[] => [0x2a, 2, ...uleb(offset)],
  f64Load: (offset = 0): number[] => [0x2b, 3, ...uleb(offset)],
  i32Store: (offset = 0): number[] => [0x36, 2, ...uleb(offset)],
  f64Store: (offset = 0): number[] => [0x39, 3, ...uleb(offset)],
  i32Const: (v: number): number[] => [0x41, ...sleb(v)],
  f64Const: (v: number): number[] => [0x44, ...f64Bytes(v)],
  i32LtU: [0x49],
  i32GeU: [0x4f],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Mul: [0x6c],
  i32Shl: [0x74],
  f64Add: [0xa0],
  f64Mul: [0xa2],
  f64Lt: [0x63],
  f64Gt: [0x64],
  f64PromoteF32: [0xbb],
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
  /** A v128 constant: four i32 lanes, little-endian. */
  v128ConstI32: (lanes: readonly [number, number, number, number]): number[] =>
    simd(0x0c, ...lanes.flatMap((v) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff])),
  /** Picks 16 bytes from the concatenation of two v128 (indices 0–31). */
  i8x16Shuffle: (bytes: readonly number[]): number[] => simd(0x0d, ...bytes),
  f32x4Splat: simd(0x13),
  f64x2Splat: simd(0x14),
  f64x2ExtractLane: (lane: number): number[] => simd(0x21, lane),
  i32x4LtS: simd(0x39),
  i32x4GtS: simd(0x3b),
  i32x4LeS: simd(0x3d),
  f64x2Lt: simd(0x49),
  f64x2Le: simd(0x4b),
  v128And: simd(0x4e),
  v128AndNot: simd(0x4f),
  v128Xor: simd(0x51),
  v128Bitselect: simd(0x52),
  f32x4DemoteF64x2Zero: simd(0x5e),
  f64x2PromoteLowF32x4: simd(0x5f),
  i32x4AllTrue: simd(0xa3),
  i32x4ShrS: simd(0xac),
  i32x4ShrU: simd(0xad),
  i32x4Add: simd(0xae),
  i32x4Sub: simd(0xb1),
  i32x4MinS: simd(0xb6),
  i32x4MinU: simd(0xb7),
  i32x4MaxS: simd(0xb8),
  f32x4Add: simd(0xe4),
  f32x4Mul: simd(0xe6),
  f64x2Add: simd(0xf0),
  f64x2Sub: simd(0xf1),
  f64x2Mul: simd(0xf2),
  f64x2Div: simd(0xf3),
};

/** IEEE 754 binary64, little-endian (as the binary format stores f64 constants). */
function f64Bytes(value: number): number[] {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value, true);
  return Array.from(new Uint8Array(view.buffer));
}

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

/**
 * A function from named parameters and locals (object key order is their order); `body` receives
 * each name's local index.
 */
export function wasmFunction<P extends string, L extends string>(
  name: string,
  params: Record<P, number>,
  locals: Record<L, number>,
  body: (at: Record<P | L, number>) => number[],
): WasmFunction {
  const names = [...Object.keys(params), ...Object.keys(locals)] as (P | L)[];
  const at = Object.fromEntries(names.map((n, index) => [n, index])) as Record<P | L, number>;
  return {
    name,
    params: Object.values<number>(params),
    locals: Object.values<number>(locals).map((type): [number, number] => [1, type]),
    code: body(at),
  };
}

/**
 * `while (ptr < end) { body; ptr += step }` on i32 locals (unsigned compare): no iteration when
 * `ptr >= end` on entry. `step` is a constant or `{ local }`. `body` must not branch out of the loop.
 */
export function stepLoop(
  ptr: number,
  end: number,
  step: number | { local: number },
  body: number[],
): number[] {
  return [
    ...op.block,
    ...op.localGet(ptr),
    ...op.localGet(end),
    ...op.i32GeU,
    ...op.brIf(0),
    ...op.loop,
    ...body,
    ...op.localGet(ptr),
    ...(typeof step === 'number' ? op.i32Const(step) : op.localGet(step.local)),
    ...op.i32Add,
    ...op.localTee(ptr),
    ...op.localGet(end),
    ...op.i32LtU,
    ...op.brIf(0),
    ...op.end,
    ...op.end,
  ];
}

/** i32 locals of `forEachTableRow`. */
export interface TableRowLocals {
  /** Address of the row table (n i32 row addresses); advanced through it. */
  rows: number;
  rowsEnd: number;
  n: number;
  /** Bytes added to each row address. */
  srcOffset: number;
  /** Set to row address + srcOffset before `body`. */
  src: number;
  /** Destination of row 0, advanced by dstStride after each row. */
  dst: number;
  /** Set to dst before `body`. */
  d: number;
  dstStride: number;
}

/** For each row of a row table: src = address + srcOffset, d = dst; `body`; dst += dstStride. */
export function forEachTableRow(l: TableRowLocals, body: number[]): number[] {
  return [
    ...op.localGet(l.n),
    ...op.i32Const(2),
    ...op.i32Shl,
    ...op.localGet(l.rows),
    ...op.i32Add,
    ...op.localSet(l.rowsEnd),
    ...stepLoop(l.rows, l.rowsEnd, 4, [
      ...op.localGet(l.rows),
      ...op.i32Load(),
      ...op.localGet(l.srcOffset),
      ...op.i32Add,
      ...op.localSet(l.src),
      ...op.localGet(l.dst),
      ...op.localSet(l.d),
      ...body,
      ...setSum(l.dst, l.dst, l.dstStride),
    ]),
  ];
}

/** `local = a + b` for i32 locals (either may be a constant given as `{ value }`). */
export function setSum(
  local: number,
  a: number | { value: number },
  b: number | { value: number },
): number[] {
  const get = (x: number | { value: number }): number[] =>
    typeof x === 'number' ? op.localGet(x) : op.i32Const(x.value);
  return [...get(a), ...get(b), ...op.i32Add, ...op.localSet(local)];
}

/**
 * A module of exported functions with no results, plus an exported growable `memory`; with
 * `importMemory` the memory is imported as `env.memory` instead (so the functions can work on
 * another instance's memory).
 */
export function assembleModule(
  functions: readonly WasmFunction[],
  options: { importMemory?: boolean } = {},
): Uint8Array<ArrayBuffer> {
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
  const memory = options.importMemory
    ? { imports: section(2, vector([[...name('env'), ...name('memory'), 0x02, 0x00, 1]])), own: [] }
    : { imports: [], own: section(5, [1, 0x00, 1]) }; // min 1 page, no max
  const parts = [
    [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    section(1, vector(types)),
    memory.imports,
    section(3, vector(functions.map((_, index) => uleb(index)))),
    memory.own,
    section(7, vector(exports)),
    section(10, vector(bodies)),
  ];
  const bytes = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    bytes.set(p, offset);
    offset += p.length;
  }
  return bytes;
}
