// The per-update loop of the others' median pass (others-median.ts) in WebAssembly. For each value
// x of an update's block it picks the median the other updates leave (comparing x with its
// column's middle value) and adds x·m, x² and m² to three float64 sums in coordinate order: the
// same IEEE operations in the same order as the TypeScript loop, so the same bits (tested against
// it in others-median.test.ts). The pass over 100 updates of 100,000 values went from 62 to 36 ms.
import { F64, I32, assembleModule, op, stepLoop, wasmFunction } from '../strategies/wasm-encoding.js';

/**
 * `(values, pivots, medians, count, sums)`: for c < count, with x = f32 values[c], p = f64
 * pivots[c] and m = medians[3c + 2·(x > p) + (x < p)] (f64), sums[0] += x·m, sums[1] += x²,
 * sums[2] += m², in that order per c.
 */
function leaveOneOutSums() {
  // sum = sum + a·b, for f64 locals.
  const addProduct = (sum: number, a: number, b: number): number[] => [
    ...op.localGet(sum),
    ...op.localGet(a),
    ...op.localGet(b),
    ...op.f64Mul,
    ...op.f64Add,
    ...op.localSet(sum),
  ];
  // i32 local += bytes.
  const advance = (local: number, bytes: number): number[] => [
    ...op.localGet(local),
    ...op.i32Const(bytes),
    ...op.i32Add,
    ...op.localSet(local),
  ];
  return wasmFunction(
    'leaveOneOutSums',
    { values: I32, pivots: I32, medians: I32, count: I32, sums: I32 },
    { end: I32, x: F64, p: F64, m: F64, dot: F64, xx: F64, mm: F64 },
    (l) => {
      const kept = [l.dot, l.xx, l.mm];
      return [
        ...kept.flatMap((local, k) => [...op.localGet(l.sums), ...op.f64Load(8 * k), ...op.localSet(local)]),
        // end = values + 4·count
        ...op.localGet(l.values),
        ...op.localGet(l.count),
        ...op.i32Const(2),
        ...op.i32Shl,
        ...op.i32Add,
        ...op.localSet(l.end),
        ...stepLoop(l.values, l.end, 4, [
          ...op.localGet(l.values),
          ...op.f32Load(),
          ...op.f64PromoteF32,
          ...op.localSet(l.x),
          ...op.localGet(l.pivots),
          ...op.f64Load(),
          ...op.localSet(l.p),
          // m's address: medians + 16·(x > p) + 8·(x < p)
          ...op.localGet(l.medians),
          ...[op.f64Gt, op.f64Lt].flatMap((compare, k) => [
            ...op.localGet(l.x),
            ...op.localGet(l.p),
            ...compare,
            ...op.i32Const(4 - k),
            ...op.i32Shl,
            ...op.i32Add,
          ]),
          ...op.f64Load(),
          ...op.localSet(l.m),
          ...addProduct(l.dot, l.x, l.m),
          ...addProduct(l.xx, l.x, l.x),
          ...addProduct(l.mm, l.m, l.m),
          ...advance(l.pivots, 8),
          ...advance(l.medians, 24),
        ]),
        ...kept.flatMap((local, k) => [...op.localGet(l.sums), ...op.localGet(local), ...op.f64Store(8 * k)]),
      ];
    },
  );
}

interface Exports {
  memory: WebAssembly.Memory;
  leaveOneOutSums(values: number, pivots: number, medians: number, count: number, sums: number): void;
}

let compiled: WebAssembly.Module | null | undefined;

function leaveOneOutModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = assembleModule([leaveOneOutSums()]);
    compiled =
      typeof WebAssembly === 'object' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return compiled;
}

const PAGE = 65_536;

/**
 * One pass's kernel: each update's three sums live in its memory for the whole pass; per block,
 * the columns' pivots and medians are written once and each update's values copied in.
 */
export class LeaveOneOutSums {
  private readonly exports: Exports;
  private readonly n: number;
  private capacity = 0;

  private constructor(exports: Exports, n: number) {
    this.exports = exports;
    this.n = n;
  }

  /** Null when this runtime has no WebAssembly (the caller keeps its TypeScript loop). */
  static create(n: number): LeaveOneOutSums | null {
    const module = leaveOneOutModule();
    if (module === null) return null;
    const kernel = new LeaveOneOutSums(new WebAssembly.Instance(module, {}).exports as unknown as Exports, n);
    kernel.reserve(0);
    return kernel;
  }

  /** Bytes: the n updates' sums, then a block's pivots (8·count), medians (24·count) and values (4·count). */
  private reserve(count: number): void {
    if (count <= this.capacity && this.capacity > 0) return;
    const bytes = 24 * this.n + 36 * count;
    const { memory } = this.exports;
    if (memory.buffer.byteLength < bytes) memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / PAGE));
    this.capacity = count;
  }

  /** Views of the block's pivots and medians to fill (valid until the next call to `block`). */
  block(count: number): { pivots: Float64Array; medians: Float64Array } {
    this.reserve(count);
    const { buffer } = this.exports.memory;
    return {
      pivots: new Float64Array(buffer, 24 * this.n, count),
      medians: new Float64Array(buffer, 24 * this.n + 8 * count, 3 * count),
    };
  }

  /** Adds update i's block (its values [start, start + count)) to its sums. */
  add(i: number, values: Float32Array, start: number, count: number): void {
    const { buffer } = this.exports.memory;
    const at = 24 * this.n + 32 * count;
    new Float32Array(buffer, at, count).set(values.subarray(start, start + count));
    this.exports.leaveOneOutSums(at, 24 * this.n, 24 * this.n + 8 * count, count, 24 * i);
  }

  /** Update i's sums so far: Σ x·m, Σ x², Σ m². */
  sums(i: number): { dot: number; self: number; reference: number } {
    const view = new Float64Array(this.exports.memory.buffer, 24 * i, 3);
    return { dot: view[0] ?? 0, self: view[1] ?? 0, reference: view[2] ?? 0 };
  }
}
