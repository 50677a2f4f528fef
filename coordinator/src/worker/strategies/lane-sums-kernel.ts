/**
 * WebAssembly SIMD for the screen's per-update sums that must equal a plain loop's bit for bit:
 * each f64x2 lane is one update's (or one pair's) own running sum, added in coordinate order with
 * the same IEEE operations as the TypeScript loop (f32 widened exactly, then a multiply and an add,
 * each rounded; WebAssembly never fuses them). Two updates share a vector, so one instruction
 * advances two sums; TypeScript keeps each sum in a scalar register.
 * - `dots4`: four updates' Σ x·y and Σ x² against one vector y (cosine.ts, `normsAndCosinesTo`).
 * - `distances4`: four pairs' Σ (a − b)² (checks.ts, `squaredDistances`).
 * The updates live in JS memory (the read arenas, the heap), which WebAssembly cannot read: they are
 * copied in BLOCK floats at a time, a cache-sized scratch, which costs less than the sums.
 */
import { at, f32At, f64At } from '@flotilla/protocol';
import { HIGH_HALF } from './column-kernels.js';
import { groupOfFour } from './groups-of-four.js';
import { I32, V128, assembleModule, op, setSum, simdOp, stepLoop, wasmFunction } from './wasm-encoding.js';

/** Floats of each row copied in per call. */
export const BLOCK = 2048;
/** Floats per loop iteration: a count passed to a kernel is a multiple of it. */
const STEP = 4;
/** Byte lists of `i8x16.shuffle(a, b)`: (a0, b0, a1, b1) and (a2, b2, a3, b3) of two f32x4. */
const INTERLEAVE_LOW = [0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23];
const INTERLEAVE_HIGH = [8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31];

/** f64x2 (a_c, b_c) for c = 0 … 3 from the two interleaved halves of a 4-float step. */
function widenedPair(low: number, high: number, c: number): number[] {
  const half = c < 2 ? low : high;
  return c % 2 === 0
    ? [...op.localGet(half), ...simdOp.f64x2PromoteLowF32x4]
    : [
        ...op.localGet(half),
        ...op.localGet(half),
        ...simdOp.i8x16Shuffle(HIGH_HALF),
        ...simdOp.f64x2PromoteLowF32x4,
      ];
}

/** low, high = the interleaved halves of rows a and b at their pointers. */
function interleave(a: number, b: number, low: number, high: number): number[] {
  return [low, high].flatMap((into, k) => [
    ...op.localGet(a),
    ...simdOp.v128Load(0),
    ...op.localGet(b),
    ...simdOp.v128Load(0),
    ...simdOp.i8x16Shuffle(k === 0 ? INTERLEAVE_LOW : INTERLEAVE_HIGH),
    ...op.localSet(into),
  ]);
}

/** sum (f64x2 local) += a · b */
const addProduct = (sum: number, a: number[], b: number[]): number[] => [
  ...op.localGet(sum),
  ...a,
  ...b,
  ...simdOp.f64x2Mul,
  ...simdOp.f64x2Add,
  ...op.localSet(sum),
];

const loadSums = (sums: number, locals: number[]): number[] =>
  locals.flatMap((local, k) => [...op.localGet(sums), ...simdOp.v128Load(16 * k), ...op.localSet(local)]);
const storeSums = (sums: number, locals: number[]): number[] =>
  locals.flatMap((local, k) => [...op.localGet(sums), ...op.localGet(local), ...simdOp.v128Store(16 * k)]);
const advance = (pointers: number[]): number[] => pointers.flatMap((p) => setSum(p, p, { value: 16 }));

/**
 * `(x0, x1, x2, x3, y, count, sums)`: sums (f64) holds [Σx0·y, Σx1·y, Σx2·y, Σx3·y, Σx0², …, Σx3²];
 * adds coordinates 0 … count − 1 to them in order.
 */
function dots4() {
  return wasmFunction(
    'dots4',
    { x0: I32, x1: I32, x2: I32, x3: I32, y: I32, count: I32, sums: I32 },
    {
      end: I32,
      ...{ lo01: V128, hi01: V128, lo23: V128, hi23: V128, yv: V128 },
      // The sums by lane: dot (x0, x1), dot (x2, x3), self (x0, x1), self (x2, x3).
      ...{ dot01: V128, dot23: V128, self01: V128, self23: V128 },
    },
    (l) => {
      const sums = [l.dot01, l.dot23, l.self01, l.self23];
      const body: number[] = [
        ...interleave(l.x0, l.x1, l.lo01, l.hi01),
        ...interleave(l.x2, l.x3, l.lo23, l.hi23),
        ...[0, 1, 2, 3].flatMap((c) => {
          const y = [...op.localGet(l.y), ...op.f32Load(4 * c), ...op.f64PromoteF32, ...simdOp.f64x2Splat];
          const x01 = widenedPair(l.lo01, l.hi01, c);
          const x23 = widenedPair(l.lo23, l.hi23, c);
          return [
            ...y,
            ...op.localSet(l.yv),
            ...addProduct(l.dot01, x01, op.localGet(l.yv)),
            ...addProduct(l.dot23, x23, op.localGet(l.yv)),
            ...addProduct(l.self01, x01, x01),
            ...addProduct(l.self23, x23, x23),
          ];
        }),
        ...advance([l.x1, l.x2, l.x3, l.y]),
      ];
      return [
        ...loadSums(l.sums, sums),
        ...endOf(l.x0, l.count, l.end),
        ...stepLoop(l.x0, l.end, 16, body),
        ...storeSums(l.sums, sums),
      ];
    },
  );
}

/** `(a0, b0, …, a3, b3, count, sums)`: sums (f64) holds [Σ(a0−b0)², …, Σ(a3−b3)²]; adds 0 … count − 1 in order. */
function distances4() {
  return wasmFunction(
    'distances4',
    { a0: I32, b0: I32, a1: I32, b1: I32, a2: I32, b2: I32, a3: I32, b3: I32, count: I32, sums: I32 },
    {
      end: I32,
      ...{ alo01: V128, ahi01: V128, blo01: V128, bhi01: V128 },
      ...{ alo23: V128, ahi23: V128, blo23: V128, bhi23: V128 },
      ...{ d: V128, sum01: V128, sum23: V128 },
    },
    (l) => {
      const sums = [l.sum01, l.sum23];
      const difference = (a: [number, number], b: [number, number], c: number): number[] => [
        ...widenedPair(a[0], a[1], c),
        ...widenedPair(b[0], b[1], c),
        ...simdOp.f64x2Sub,
        ...op.localSet(l.d),
      ];
      const body: number[] = [
        ...interleave(l.a0, l.a1, l.alo01, l.ahi01),
        ...interleave(l.b0, l.b1, l.blo01, l.bhi01),
        ...interleave(l.a2, l.a3, l.alo23, l.ahi23),
        ...interleave(l.b2, l.b3, l.blo23, l.bhi23),
        ...[0, 1, 2, 3].flatMap((c) => [
          ...difference([l.alo01, l.ahi01], [l.blo01, l.bhi01], c),
          ...addProduct(l.sum01, op.localGet(l.d), op.localGet(l.d)),
          ...difference([l.alo23, l.ahi23], [l.blo23, l.bhi23], c),
          ...addProduct(l.sum23, op.localGet(l.d), op.localGet(l.d)),
        ]),
        ...advance([l.b0, l.a1, l.b1, l.a2, l.b2, l.a3, l.b3]),
      ];
      return [
        ...loadSums(l.sums, sums),
        ...endOf(l.a0, l.count, l.end),
        ...stepLoop(l.a0, l.end, 16, body),
        ...storeSums(l.sums, sums),
      ];
    },
  );
}

/** end = start + 4 · count */
function endOf(start: number, count: number, end: number): number[] {
  return [
    ...op.localGet(start),
    ...op.localGet(count),
    ...op.i32Const(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.localSet(end),
  ];
}

interface LaneExports {
  memory: WebAssembly.Memory;
  dots4(x0: number, x1: number, x2: number, x3: number, y: number, count: number, sums: number): void;
  distances4(...pointersCountSums: number[]): void;
}

/** Row slots of the scratch: eight of BLOCK floats (the pairs' rows, or four rows and y). */
const SLOT_BYTES = BLOCK * 4;
const SUMS_AT = 8 * SLOT_BYTES;
/** Byte address of each slot, in the kernels' argument order. */
const SLOT_ADDRESSES = [0, 1, 2, 3, 4, 5, 6, 7].map((slot) => slot * SLOT_BYTES);
const PAGE = 65_536;

let instance: LaneExports | null | undefined;

/** This thread's instance (module state is per thread), or null without WebAssembly SIMD. */
function laneKernel(): LaneExports | null {
  if (instance === undefined) {
    instance = null;
    const bytes = assembleModule([dots4(), distances4()]);
    if (typeof WebAssembly === 'object' && WebAssembly.validate(bytes))
      instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {})
        .exports as unknown as LaneExports;
  }
  return instance;
}

/** The kernel with room for `sumBytes` of sums, its rows' scratch and zeroed sums as views. */
function prepare(sumBytes: number): { kernel: LaneExports; slots: Float32Array; sums: Float64Array } | null {
  const kernel = laneKernel();
  if (kernel === null) return null;
  const { memory } = kernel;
  const needed = SUMS_AT + sumBytes;
  if (memory.buffer.byteLength < needed) memory.grow(Math.ceil((needed - memory.buffer.byteLength) / PAGE));
  const sums = new Float64Array(memory.buffer, SUMS_AT, sumBytes / 8);
  sums.fill(0);
  return { kernel, slots: new Float32Array(memory.buffer, 0, SUMS_AT / 4), sums };
}

/** Copies row[start, start + count) into scratch slot `slot`. */
function stage(slots: Float32Array, slot: number, row: Float32Array, start: number, count: number): void {
  slots.set(row.subarray(start, start + count), slot * BLOCK);
}

/** Floats a kernel call takes of `count`; the rest (fewer than STEP) are added here after it. */
const kernelCount = (count: number): number => count - (count % STEP);

/**
 * For each update u (its tensors in the reference's order and sizes), Σ u·y and Σ u² over all
 * tensors, each added in coordinate order as a plain loop would: the same bits. Null without
 * WebAssembly SIMD (the caller's loop then computes them).
 */
export function laneDotsAndSquares(
  updates: ReadonlyArray<readonly Float32Array[]>,
  reference: readonly Float32Array[],
): { dot: Float64Array; self: Float64Array } | null {
  const n = updates.length;
  const groups = Math.ceil(n / 4);
  const ready = prepare(groups * 64);
  if (ready === null) return null;
  const { kernel, slots, sums } = ready;
  const members = Array.from({ length: groups }, (_, g) => groupOfFour(updates, 4 * g).group);
  reference.forEach((y, t) => {
    for (let start = 0; start < y.length; start += BLOCK) {
      const count = Math.min(BLOCK, y.length - start);
      const whole = kernelCount(count);
      stage(slots, 4, y, start, count);
      for (let g = 0; g < groups; g++) {
        at(members, g).forEach((member, k) => stage(slots, k, at(member, t), start, count));
        kernel.dots4(0, SLOT_BYTES, 2 * SLOT_BYTES, 3 * SLOT_BYTES, 4 * SLOT_BYTES, whole, SUMS_AT + 64 * g);
        for (let c = whole; c < count; c++) {
          const r = f32At(slots, 4 * BLOCK + c);
          for (let k = 0; k < 4; k++) {
            const x = f32At(slots, k * BLOCK + c);
            sums[8 * g + k] = f64At(sums, 8 * g + k) + x * r;
            sums[8 * g + 4 + k] = f64At(sums, 8 * g + 4 + k) + x * x;
          }
        }
      }
    }
  });
  const dot = new Float64Array(n);
  const self = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const g = i >> 2;
    dot[i] = f64At(sums, 8 * g + (i & 3));
    self[i] = f64At(sums, 8 * g + 4 + (i & 3));
  }
  return { dot, self };
}

/**
 * Σ (a − b)² of each pair (vectors of one length), in coordinate order as a plain loop adds it:
 * the same bits. Null without WebAssembly SIMD.
 */
export function laneSquaredDistances(
  pairs: ReadonlyArray<readonly [Float32Array, Float32Array]>,
): number[] | null {
  const ready = prepare(32);
  if (ready === null) return null;
  const { kernel, slots, sums } = ready;
  const out: number[] = [];
  for (let g = 0; g < pairs.length; g += 4) {
    const { group, kept } = groupOfFour(pairs, g);
    const rows = group.flat();
    const length = at(rows, 0).length;
    sums.fill(0);
    for (let start = 0; start < length; start += BLOCK) {
      const count = Math.min(BLOCK, length - start);
      const whole = kernelCount(count);
      rows.forEach((row, slot) => stage(slots, slot, row, start, count));
      kernel.distances4(...SLOT_ADDRESSES, whole, SUMS_AT);
      for (let c = whole; c < count; c++)
        for (let k = 0; k < 4; k++) {
          const d = f32At(slots, 2 * k * BLOCK + c) - f32At(slots, (2 * k + 1) * BLOCK + c);
          sums[k] = f64At(sums, k) + d * d;
        }
    }
    out.push(...Array.from(sums.subarray(0, kept)));
  }
  return out;
}
