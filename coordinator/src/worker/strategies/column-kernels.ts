/**
 * WebAssembly SIMD kernels around the coordinate-wise strategies' sort (median, trimmed mean,
 * Bulyan's second stage): a block of B consecutive coordinates of all n updates is held as n rows of
 * B lanes, one row per update, and every lane (coordinate) is sorted independently by a comparator
 * network (network-kernel.ts). These kernels move values into and out of that form.
 *
 * The values are sorted as integer keys, not as floats: `key = bits ^ ((bits >> 31) >>> 1)` flips
 * every bit but the sign of a negative float, so signed integer order is the float order with
 * -0 < +0, and every NaN is mapped to the largest key. That is exactly the order of
 * `Float64Array.prototype.sort`, which the strategies were defined with (NaN last, -0 before +0),
 * so the sorted columns are the same values in the same places. The map is its own inverse on
 * every key but the NaN one, which maps back to a NaN.
 */
import {
  I32,
  V128,
  forEachTableRow,
  op,
  setSum,
  simdOp,
  stepLoop,
  wasmFunction,
  type WasmFunction,
} from './wasm-encoding.js';

const NAN_KEY = 0x7fffffff;
const INF_BITS = 0x7f800000;

/** Pushes the v128 in local `x` (float bits or keys) mapped through the key involution. */
export function flipKeys(x: number): number[] {
  return [
    ...op.localGet(x),
    ...op.localGet(x),
    ...op.i32Const(31),
    ...simdOp.i32x4ShrS,
    ...op.i32Const(1),
    ...simdOp.i32x4ShrU,
    ...simdOp.v128Xor,
  ];
}

/**
 * `(rows, n, srcOffset, dst, rowBytes, dstStride)`: for each of the n row addresses (i32) at
 * `rows`, reads `rowBytes` of f32 from `address + srcOffset` and writes their keys to `dst + r ·
 * dstStride`. `rowBytes` must be a multiple of 64; source and destination may be the same bytes.
 */
function keysFromRows(): WasmFunction {
  return wasmFunction(
    'keysFromRows',
    { rows: I32, n: I32, srcOffset: I32, dst: I32, rowBytes: I32, dstStride: I32 },
    { rowsEnd: I32, src: I32, srcEnd: I32, d: I32, x: V128, nanKey: V128, infBits: V128 },
    (l) => {
      const vector = (k: number): number[] => [
        ...op.localGet(l.src),
        ...simdOp.v128Load(16 * k),
        ...op.localSet(l.x),
        ...op.localGet(l.d),
        // NaN bits (|x| > Inf) become the largest key; everything else is flipped.
        ...op.localGet(l.nanKey),
        ...flipKeys(l.x),
        ...op.localGet(l.x),
        ...op.localGet(l.nanKey),
        ...simdOp.v128And,
        ...op.localGet(l.infBits),
        ...simdOp.i32x4GtS,
        ...simdOp.v128Bitselect,
        ...simdOp.v128Store(16 * k),
      ];
      return [
        ...simdOp.v128ConstI32([NAN_KEY, NAN_KEY, NAN_KEY, NAN_KEY]),
        ...op.localSet(l.nanKey),
        ...simdOp.v128ConstI32([INF_BITS, INF_BITS, INF_BITS, INF_BITS]),
        ...op.localSet(l.infBits),
        ...forEachTableRow(l, [
          ...setSum(l.srcEnd, l.src, l.rowBytes),
          ...stepLoop(l.src, l.srcEnd, 64, [
            ...[0, 1, 2, 3].flatMap(vector),
            ...setSum(l.d, l.d, { value: 64 }),
          ]),
        ]),
      ];
    },
  );
}

/** `(src, dst, bytes)`: keys at `src` back to f32 at `dst` (may be `src`); `bytes` a multiple of 16. */
function floatsFromKeys(): WasmFunction {
  return wasmFunction('floatsFromKeys', { src: I32, dst: I32, bytes: I32 }, { end: I32, x: V128 }, (l) => [
    ...setSum(l.end, l.src, l.bytes),
    ...stepLoop(l.src, l.end, 16, [
      ...op.localGet(l.src),
      ...simdOp.v128Load(0),
      ...op.localSet(l.x),
      ...op.localGet(l.dst),
      ...flipKeys(l.x),
      ...simdOp.v128Store(0),
      ...setSum(l.dst, l.dst, { value: 16 }),
    ]),
  ]);
}

/** Byte shuffle that moves lanes 2 and 3 of an f32x4 to lanes 0 and 1 (for the promotion). */
export const HIGH_HALF = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
/** Byte shuffle joining the low halves of two v128 (two demoted f64x2 results) into one f32x4. */
export const JOIN_LOW_HALVES = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];

/**
 * Pushes the f64x2 of lanes 0–1 (`high` false) or 2–3 (`high` true) of the f32x4 in local `v`.
 */
export function promoteHalf(v: number, high: boolean): number[] {
  return high
    ? [
        ...op.localGet(v),
        ...op.localGet(v),
        ...simdOp.i8x16Shuffle(HIGH_HALF),
        ...simdOp.f64x2PromoteLowF32x4,
      ]
    : [...op.localGet(v), ...simdOp.f64x2PromoteLowF32x4];
}

/** Pushes an f64x2 with `value` in both lanes. */
export function f64Splat(value: number): number[] {
  return [...op.f64Const(value), ...simdOp.f64x2Splat];
}

/** The column kernels, in the order their exports are listed in `ColumnKernel`. */
export function columnFunctions(): WasmFunction[] {
  return [keysFromRows(), floatsFromKeys()];
}

/** Exports of the column kernels (all pointers and sizes in bytes of the instance's memory). */
export interface ColumnKernel {
  keysFromRows(
    rows: number,
    n: number,
    srcOffset: number,
    dst: number,
    rowBytes: number,
    dstStride: number,
  ): void;
  floatsFromKeys(src: number, dst: number, bytes: number): void;
}
