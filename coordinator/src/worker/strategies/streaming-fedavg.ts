// Weighted FedAvg (McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from
// Decentralized Data"): sum_k n_k x_k / sum_k n_k, folded into one float64 accumulator.
import { FlotillaError, f32At, f64At } from '@flotilla/protocol';
import { checkFinite, checkWeight } from './checks.js';
import { KernelArena } from './kernel-arena.js';
import { GROUP, KERNEL_LANES, type SimdKernel } from './simd-kernel.js';

/**
 * Coordinates per chunk: `addAll` runs every update through one chunk of the accumulator (256 KiB
 * of f64) before moving on, so the accumulator stays in L2 and memory traffic is the inputs read
 * once. Also the size of each staging slot (GROUP of them) for updates outside the arena.
 */
const CHUNK_FLOATS = 32_768;

export interface StreamingFedAvgOptions {
  /** Number of f32 values in every update. */
  length: number;
  /**
   * `'auto'` (default) uses the WebAssembly SIMD kernel when the runtime validates it, else the
   * TS loop; `'simd'` throws if SIMD is missing; `'scalar'` always uses the TS loop.
   */
  kernel?: 'auto' | 'simd' | 'scalar';
  /**
   * Where to put the accumulator. Updates that live in the same arena are read in place; others
   * are copied through a small staging area. Default: a private arena (or the TS loop past 4 GiB).
   */
  arena?: KernelArena;
}

export interface AddOptions {
  /**
   * Multiplies the values (not the weight) before accumulation: norm bounding passes its clip
   * factor here, and 0 for a zeroed update whose weight still counts in the denominator. Default 1.
   */
  scale?: number;
}

export interface BatchEntry extends AddOptions {
  values: Float32Array;
  weight: number;
}

/** One update ready for the kernel: its values, w·scale, and its byte address when in the arena. */
interface Term {
  values: Float32Array;
  w: number;
  address: number | null;
}

/**
 * Streaming weighted mean. Memory is one float64 accumulator of `length` values (plus 512 KiB of
 * staging for the SIMD kernel), whatever the number of updates. Adding updates one at a time or in
 * batches gives bit-for-bit the same sums: every coordinate adds the updates in the order given.
 */
export class StreamingFedAvg {
  readonly length: number;
  private readonly arena: KernelArena | null;
  /** Where the arena's stack stood before this accumulator, for `release`. */
  private readonly arenaMark: number | null;
  private released = false;
  private readonly acc: Float64Array;
  private readonly slots: Float32Array[];
  private weightSum = 0;
  private added = 0;
  private readInPlace = 0;

  constructor(options: StreamingFedAvgOptions) {
    const { length } = options;
    if (!Number.isInteger(length) || length < 0) {
      throw new FlotillaError('BAD_REQUEST', `length must be an integer >= 0, got ${length}`);
    }
    this.length = length;
    const mode = options.kernel ?? 'auto';
    const mark = options.arena?.mark() ?? null;
    const placed = mode === 'scalar' ? null : place(length, options.arena);
    if (mode === 'simd' && placed === null) {
      throw new FlotillaError('INTERNAL', 'WebAssembly SIMD is not available in this runtime');
    }
    this.arena = placed?.arena ?? null;
    this.arenaMark = placed !== null && placed.arena === options.arena ? mark : null;
    this.acc = placed?.acc ?? new Float64Array(length);
    this.slots = placed?.slots ?? [];
  }

  /** True when the WebAssembly SIMD kernel does the accumulation. */
  get usesSimd(): boolean {
    return this.arena !== null;
  }

  /** Updates added so far. */
  get count(): number {
    return this.added;
  }

  /** Updates the kernel read in place from its arena (the rest went through staging or the TS loop). */
  get inPlaceCount(): number {
    return this.readInPlace;
  }

  /** Sum of the weights added so far (zeroed updates included). */
  get totalWeight(): number {
    return this.weightSum;
  }

  /** Folds in one update with weight `weight` (e.g. its number of examples). */
  add(values: Float32Array, weight: number, options: AddOptions = {}): void {
    this.addAll([{ values, weight, ...options }]);
  }

  /**
   * Folds in several updates, chunk by chunk (see CHUNK_FLOATS). Checks every entry before
   * changing anything, so a bad entry leaves the accumulator as it was.
   */
  addAll(entries: readonly BatchEntry[]): void {
    this.checkLive();
    const terms: Term[] = [];
    for (const entry of entries) {
      const w = this.checkEntry(entry);
      if (w !== 0) terms.push({ values: entry.values, w, address: this.addressOf(entry.values) });
    }
    for (const entry of entries) this.weightSum += entry.weight;
    this.added += entries.length;
    this.readInPlace += terms.filter((t) => t.address !== null).length;
    const kernel = this.arena?.kernel;
    if (kernel === undefined) {
      for (const t of terms) addScalar(this.acc, t.values, t.w, 0, this.length);
      return;
    }
    for (let start = 0; start < this.length; start += CHUNK_FLOATS) {
      const end = Math.min(this.length, start + CHUNK_FLOATS);
      const vectorEnd = start + Math.floor((end - start) / KERNEL_LANES) * KERNEL_LANES;
      if (vectorEnd > start) this.foldChunk(kernel, terms, start, vectorEnd);
      for (const t of terms) addScalar(this.acc, t.values, t.w, vectorEnd, end);
    }
  }

  /** A copy of Σ w·x so far, in float64 (for a caller that combines partial sums: shard jobs). */
  sums(): Float64Array {
    this.checkLive();
    return this.acc.slice();
  }

  /** The weighted mean so far, rounded once to f32. Throws when the total weight is 0. */
  result(): Float32Array {
    this.checkLive();
    if (this.added === 0 || !(this.weightSum > 0)) {
      throw new FlotillaError('BAD_REQUEST', 'weighted mean of no updates (or of zero total weight)');
    }
    const out = new Float32Array(this.length);
    const acc = this.acc;
    const total = this.weightSum;
    for (let i = 0; i < out.length; i++) out[i] = f64At(acc, i) / total;
    return checkFinite(out, 'weighted mean');
  }

  /**
   * Gives the accumulator's memory back to the arena it was placed in (a no-op for a private
   * arena, which is freed with this object). Nothing may be added or read afterwards.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.arenaMark !== null) this.arena?.release(this.arenaMark);
  }

  private checkLive(): void {
    if (this.released) throw new FlotillaError('INTERNAL', 'this FedAvg accumulator was released');
  }

  /** acc[start, end) += Σ w·x over all terms, GROUP at a time, in order. */
  private foldChunk(kernel: SimdKernel, terms: readonly Term[], start: number, end: number): void {
    const accPtr = this.acc.byteOffset + start * 8;
    const count = end - start;
    const ptr = (t: Term, slot: number): number => {
      if (t.address !== null) return t.address + start * 4;
      const staging = this.slots[slot] as Float32Array;
      staging.set(t.values.subarray(start, end));
      return staging.byteOffset;
    };
    let k = 0;
    for (; k + GROUP <= terms.length; k += GROUP) {
      const [a, b, c, d] = terms.slice(k, k + GROUP) as [Term, Term, Term, Term];
      kernel.axpyGroup(accPtr, count, ptr(a, 0), ptr(b, 1), ptr(c, 2), ptr(d, 3), a.w, b.w, c.w, d.w);
    }
    for (; k < terms.length; k++) {
      const t = terms[k] as Term;
      kernel.axpy(accPtr, count, ptr(t, 0), t.w);
    }
  }

  /** Validates one entry and returns w·scale. */
  private checkEntry(entry: BatchEntry): number {
    if (entry.values.length !== this.length) {
      throw new FlotillaError(
        'SHAPE_MISMATCH',
        `update has ${entry.values.length} values, expected ${this.length}`,
      );
    }
    checkWeight(entry.weight);
    const scale = entry.scale ?? 1;
    if (!Number.isFinite(scale)) throw new FlotillaError('INTERNAL', `scale must be finite, got ${scale}`);
    return entry.weight * scale;
  }

  /** Byte address of `values` in this accumulator's arena, or null when it lives elsewhere. */
  private addressOf(values: Float32Array): number | null {
    return this.arena !== null && KernelArena.of(values) === this.arena ? values.byteOffset : null;
  }
}

export interface WeightedMean {
  values: Float32Array;
  totalWeight: number;
  usesSimd: boolean;
  /** Entries the kernel read in place from their arena. */
  readInPlace: number;
}

/**
 * The weighted mean of `entries` folded as one batch. When they live in a kernel arena the
 * accumulator goes there too (so the kernel reads them in place) and is given back afterwards.
 */
export function weightedMean(length: number, entries: readonly BatchEntry[]): WeightedMean {
  const arena = entries[0] === undefined ? null : KernelArena.of(entries[0].values);
  const mean = new StreamingFedAvg({ length, ...(arena ? { arena } : {}) });
  try {
    mean.addAll(entries);
    return {
      values: mean.result(),
      totalWeight: mean.totalWeight,
      usesSimd: mean.usesSimd,
      readInPlace: mean.inPlaceCount,
    };
  } finally {
    mean.release();
  }
}

/** Bytes of arena an accumulator of `length` values takes (staging included). */
export function accumulatorFootprint(length: number): number {
  return KernelArena.footprint(length, 8) + GROUP * KernelArena.footprint(CHUNK_FLOATS, 4);
}

/** Accumulator and staging slots in `preferred` when they fit, else in a private arena. */
function place(
  length: number,
  preferred: KernelArena | undefined,
): { arena: KernelArena; acc: Float64Array; slots: Float32Array[] } | null {
  const bytes = accumulatorFootprint(length);
  const arena =
    preferred !== undefined && preferred.available >= bytes ? preferred : KernelArena.create(bytes);
  if (arena === null) return null;
  const acc = arena.float64(length);
  const slots = Array.from({ length: GROUP }, () => arena.float32(CHUNK_FLOATS));
  if (acc === null || slots.some((s) => s === null)) return null;
  return { arena, acc, slots: slots as Float32Array[] };
}

function addScalar(acc: Float64Array, values: Float32Array, w: number, from: number, to: number): void {
  for (let i = from; i < to; i++) acc[i] = f64At(acc, i) + w * f32At(values, i);
}
