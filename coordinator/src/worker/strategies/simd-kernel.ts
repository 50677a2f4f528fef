/**
 * Hand-assembled WebAssembly SIMD kernels for the FedAvg hot loop: `acc[i] += Σ_j w_j · x_j[i]`
 * with an f64 accumulator and f32 inputs (core spec 2.0 fixed-width SIMD).
 *
 * Why f64 accumulation: an f32 running sum over n updates loses ~sqrt(n)·2⁻²⁴ relative precision
 * per coordinate (n·2⁻²⁴ in the worst case), already ~1e-6 at n = 100. Promoting each pair of f32
 * lanes to f64x2 keeps the sum within ~1e-16 and the final result within one f32 rounding of the
 * f64 reference.
 *
 * Why a group kernel: with one input per call every update loads and stores the accumulator once.
 * `axpyGroup` folds GROUP inputs per accumulator load/store, in input order, so it gives bit for
 * bit the sums of GROUP consecutive `axpy` calls with a quarter of the accumulator traffic.
 */
import { columnFunctions, type ColumnKernel } from './column-kernels.js';
import { gramFunctions, type GramKernel } from './gram-kernels.js';
import { F64, I32, V128, assembleModule, op, simdOp, type WasmFunction } from './wasm-encoding.js';

/** Floats the kernels consume per loop iteration; counts passed in must be multiples of it. */
export const KERNEL_LANES = 8;
/** Inputs folded per `axpyGroup` call. */
export const GROUP = 4;

/**
 * `(acc, count, x_0 … x_{n-1}, w_0 … w_{n-1})`: for `count` floats, acc (f64) += Σ_j w_j · x_j,
 * adding the terms in input order. The loop body handles 8 floats as four f64x2 lane pairs.
 */
function axpyFunction(name: string, inputs: number): WasmFunction {
  const [acc, count] = [0, 1];
  const input = (j: number): number => 2 + j;
  const weight = (j: number): number => 2 + inputs + j;
  const splat = (j: number): number => 2 + 2 * inputs + j;
  const end = 2 + 3 * inputs;
  const term = (j: number, pair: number): number[] => [
    ...op.localGet(input(j)),
    ...simdOp.v128Load64Zero(pair * 8),
    ...simdOp.f64x2PromoteLowF32x4,
    ...op.localGet(splat(j)),
    ...simdOp.f64x2Mul,
    ...simdOp.f64x2Add,
  ];
  const lanePair = (pair: number): number[] => [
    ...op.localGet(acc),
    ...op.localGet(acc),
    ...simdOp.v128Load(pair * 16),
    ...Array.from({ length: inputs }, (_, j) => term(j, pair)).flat(),
    ...simdOp.v128Store(pair * 16),
  ];
  const advance = (local: number, bytes: number): number[] => [
    ...op.localGet(local),
    ...op.i32Const(bytes),
    ...op.i32Add,
    ...op.localSet(local),
  ];
  const code = [
    // end = x_0 + count * 4; splat_j = f64x2.splat(w_j)
    ...op.localGet(input(0)),
    ...op.localGet(count),
    ...op.i32Const(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.localSet(end),
    ...Array.from({ length: inputs }, (_, j) => [
      ...op.localGet(weight(j)),
      ...simdOp.f64x2Splat,
      ...op.localSet(splat(j)),
    ]).flat(),
    // if (x_0 < end) do { four lane pairs; acc += 64; x_j += 32 } while (x_0 < end)
    ...op.block,
    ...op.localGet(input(0)),
    ...op.localGet(end),
    ...op.i32GeU,
    ...op.brIf(0),
    ...op.loop,
    ...[0, 1, 2, 3].flatMap(lanePair),
    ...advance(acc, 64),
    ...Array.from({ length: inputs }, (_, j) => advance(input(j), 32)).flat(),
    ...op.localGet(input(0)),
    ...op.localGet(end),
    ...op.i32LtU,
    ...op.brIf(0),
    ...op.end,
    ...op.end,
  ];
  return {
    name,
    params: [I32, I32, ...Array<number>(inputs).fill(I32), ...Array<number>(inputs).fill(F64)],
    locals: [
      [inputs, V128],
      [1, I32],
    ],
    code,
  };
}

function kernelBytes(): Uint8Array<ArrayBuffer> {
  return assembleModule([
    axpyFunction('axpy', 1),
    axpyFunction('axpyGroup', GROUP),
    ...columnFunctions(),
    ...gramFunctions(),
  ]);
}

/** One instance's exports: the FedAvg fold, the column kernels and the Gram kernels. */
export interface SimdKernel extends ColumnKernel, GramKernel {
  memory: WebAssembly.Memory;
  /** `acc[i] += w * x[i]` for `count` elements (a multiple of KERNEL_LANES); pointers are bytes. */
  axpy(accPtr: number, count: number, xPtr: number, w: number): void;
  /** `acc[i] += w0·x0[i] + w1·x1[i] + w2·x2[i] + w3·x3[i]`, added in that order (GROUP = 4). */
  axpyGroup(
    accPtr: number,
    count: number,
    x0: number,
    x1: number,
    x2: number,
    x3: number,
    w0: number,
    w1: number,
    w2: number,
    w3: number,
  ): void;
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled module, or null when this runtime has no WebAssembly SIMD (then use the TS loop). */
export function simdModule(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  compiled = null;
  if (typeof WebAssembly === 'object') {
    const bytes = kernelBytes();
    if (WebAssembly.validate(bytes)) compiled = new WebAssembly.Module(bytes);
  }
  return compiled;
}

/** True when the SIMD kernel validates and compiles here. */
export function simdAvailable(): boolean {
  return simdModule() !== null;
}

/** A fresh instance with its own linear memory (so one accumulator's memory is freed with it). */
export function instantiateSimdKernel(): SimdKernel | null {
  const module = simdModule();
  if (module === null) return null;
  const instance = new WebAssembly.Instance(module, {});
  return instance.exports as unknown as SimdKernel;
}
