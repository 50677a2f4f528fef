// Weighted FedAvg (McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from
// Decentralized Data"): sum_k n_k x_k / sum_k n_k, folded one update at a time.
import { FlotillaError } from '@flotilla/protocol';
import { checkFinite, checkWeight } from './checks.js';
import { instantiateSimdKernel, KERNEL_LANES, type SimdKernel } from './simd-kernel.js';

/** Floats copied into the kernel's staging area per call: 64 KiB stays in L2 between copy and use. */
const STAGING_FLOATS = 16_384;
const PAGE_BYTES = 65_536;
/** wasm32 linear memory tops out at 4 GiB; past that the TS loop takes over. */
const MAX_WASM_BYTES = 4 * 1024 * 1024 * 1024 - PAGE_BYTES;

export interface StreamingFedAvgOptions {
  /** Number of f32 values in every update. */
  length: number;
  /**
   * `'auto'` (default) uses the WebAssembly SIMD kernel when the runtime validates it, else the
   * TS loop; `'simd'` throws if SIMD is missing; `'scalar'` always uses the TS loop.
   */
  kernel?: 'auto' | 'simd' | 'scalar';
}

export interface AddOptions {
  /**
   * Multiplies the values (not the weight) before accumulation: norm bounding passes its clip
   * factor here, and 0 for a zeroed update whose weight still counts in the denominator. Default 1.
   */
  scale?: number;
}

/**
 * Streaming weighted mean. Memory is one float64 accumulator of `length` values (plus a 64 KiB
 * staging area for the SIMD kernel), whatever the number of updates.
 */
export class StreamingFedAvg {
  readonly length: number;
  private readonly kernel: SimdKernel | null;
  private readonly acc: Float64Array;
  private readonly staging: Float32Array | null;
  private weightSum = 0;
  private added = 0;

  constructor(options: StreamingFedAvgOptions) {
    const { length } = options;
    if (!Number.isInteger(length) || length < 0) {
      throw new FlotillaError('BAD_REQUEST', `length must be an integer >= 0, got ${length}`);
    }
    this.length = length;
    const mode = options.kernel ?? 'auto';
    const accBytes = Math.ceil((length * 8) / 16) * 16;
    const needed = accBytes + STAGING_FLOATS * 4;
    const kernel = mode === 'scalar' || needed > MAX_WASM_BYTES ? null : instantiateSimdKernel();
    if (mode === 'simd' && kernel === null) {
      throw new FlotillaError('INTERNAL', 'WebAssembly SIMD is not available in this runtime');
    }
    this.kernel = kernel;
    if (kernel === null) {
      this.acc = new Float64Array(length);
      this.staging = null;
    } else {
      const pages = Math.ceil(needed / PAGE_BYTES) - kernel.memory.buffer.byteLength / PAGE_BYTES;
      if (pages > 0) kernel.memory.grow(pages);
      this.acc = new Float64Array(kernel.memory.buffer, 0, length);
      this.staging = new Float32Array(kernel.memory.buffer, accBytes, STAGING_FLOATS);
    }
  }

  /** True when the WebAssembly SIMD kernel does the accumulation. */
  get usesSimd(): boolean {
    return this.kernel !== null;
  }

  /** Updates added so far. */
  get count(): number {
    return this.added;
  }

  /** Sum of the weights added so far (zeroed updates included). */
  get totalWeight(): number {
    return this.weightSum;
  }

  /** Folds in one update with weight `weight` (e.g. its number of examples). */
  add(values: Float32Array, weight: number, options: AddOptions = {}): void {
    if (values.length !== this.length) {
      throw new FlotillaError(
        'SHAPE_MISMATCH',
        `update has ${values.length} values, expected ${this.length}`,
      );
    }
    checkWeight(weight);
    const scale = options.scale ?? 1;
    if (!Number.isFinite(scale)) throw new FlotillaError('BAD_REQUEST', `scale must be finite, got ${scale}`);
    this.weightSum += weight;
    this.added += 1;
    const w = weight * scale;
    if (w === 0) return;
    if (this.kernel === null || this.staging === null) {
      addScalar(this.acc, values, w, 0, values.length);
      return;
    }
    const stagingPtr = this.staging.byteOffset;
    for (let start = 0; start < values.length; start += STAGING_FLOATS) {
      const end = Math.min(values.length, start + STAGING_FLOATS);
      const vectorEnd = start + Math.floor((end - start) / KERNEL_LANES) * KERNEL_LANES;
      if (vectorEnd > start) {
        this.staging.set(values.subarray(start, vectorEnd));
        this.kernel.axpy(start * 8, stagingPtr, vectorEnd - start, w);
      }
      addScalar(this.acc, values, w, vectorEnd, end);
    }
  }

  /** The weighted mean so far, rounded once to f32. Throws when the total weight is 0. */
  result(): Float32Array {
    if (this.added === 0 || !(this.weightSum > 0)) {
      throw new FlotillaError('BAD_REQUEST', 'weighted mean of no updates (or of zero total weight)');
    }
    const out = new Float32Array(this.length);
    for (let i = 0; i < this.length; i++) out[i] = (this.acc[i] ?? 0) / this.weightSum;
    return checkFinite(out, 'weighted mean');
  }
}

function addScalar(acc: Float64Array, values: Float32Array, w: number, from: number, to: number): void {
  for (let i = from; i < to; i++) acc[i] = (acc[i] ?? 0) + w * (values[i] ?? 0);
}
