// Memory the FedAvg kernel can read in place. WebAssembly code only sees its own linear memory, so
// an update held in an ordinary Float32Array has to be copied in before the kernel touches it; that
// copy costs as much as the whole fold. The worker already copies every update once when it
// flattens the tensors, so it flattens them into an arena and the kernel reads them where they are.
import { instantiateSimdKernel, type SimdKernel } from './simd-kernel.js';

const PAGE_BYTES = 65_536;
/** wasm32 linear memory tops out at 4 GiB (minus a page in some engines). */
export const MAX_ARENA_BYTES = 4 * 1024 * 1024 * 1024 - PAGE_BYTES;
const ALIGN = 16;

/** Arenas by their memory's buffer, so a kernel can tell whether an array lives in one. */
const arenasByBuffer = new WeakMap<ArrayBufferLike, KernelArena>();

/**
 * A stack allocator over one kernel instance's linear memory. The memory is sized once, before any
 * view is handed out, because growing a WebAssembly memory detaches every existing view of it.
 * `release(mark)` frees everything allocated after `mark()`, so an accumulator's pages are reused
 * (already mapped, and cached) by the next aggregation over the same updates.
 */
export class KernelArena {
  readonly kernel: SimdKernel;
  private readonly buffer: ArrayBuffer;
  private next = 0;
  /** Bytes below this have been handed out before and may hold old values. */
  private used = 0;

  private constructor(kernel: SimdKernel, bytes: number) {
    this.kernel = kernel;
    const pages = Math.ceil(bytes / PAGE_BYTES) - kernel.memory.buffer.byteLength / PAGE_BYTES;
    if (pages > 0) kernel.memory.grow(pages);
    this.buffer = kernel.memory.buffer;
    arenasByBuffer.set(this.buffer, this);
  }

  /** An arena of at least `bytes`, or null without WebAssembly SIMD or past the wasm32 limit. */
  static create(bytes: number): KernelArena | null {
    if (!Number.isFinite(bytes) || bytes < 0 || bytes > MAX_ARENA_BYTES) return null;
    const kernel = instantiateSimdKernel();
    return kernel === null ? null : new KernelArena(kernel, Math.max(bytes, PAGE_BYTES));
  }

  /** The arena `array` lives in, if any. */
  static of(array: ArrayBufferView): KernelArena | null {
    return arenasByBuffer.get(array.buffer) ?? null;
  }

  /** Bytes an allocation of `count` elements of `bytesPerElement` takes, alignment included. */
  static footprint(count: number, bytesPerElement: number): number {
    return Math.ceil((count * bytesPerElement) / ALIGN) * ALIGN;
  }

  /** Bytes not yet handed out. */
  get available(): number {
    return this.buffer.byteLength - this.next;
  }

  /** The current top of the stack, for `release`. */
  mark(): number {
    return this.next;
  }

  /** Frees every allocation made after `mark` was taken; views of them must not be used again. */
  release(mark: number): void {
    if (Number.isInteger(mark) && mark >= 0 && mark <= this.next) this.next = mark;
  }

  /** A zeroed Float32Array in the arena, or null when it does not fit. */
  float32(length: number): Float32Array | null {
    const offset = this.take(length, 4);
    return offset === null ? null : new Float32Array(this.buffer, offset, length);
  }

  /** A zeroed Float64Array in the arena, or null when it does not fit. */
  float64(length: number): Float64Array | null {
    const offset = this.take(length, 8);
    return offset === null ? null : new Float64Array(this.buffer, offset, length);
  }

  private take(length: number, bytesPerElement: number): number | null {
    const size = KernelArena.footprint(length, bytesPerElement);
    if (size > this.available) return null;
    const offset = this.next;
    this.next += size;
    // Fresh wasm memory is zero; reused memory is cleared here.
    if (offset < this.used) new Uint8Array(this.buffer, offset, Math.min(size, this.used - offset)).fill(0);
    this.used = Math.max(this.used, this.next);
    return offset;
  }
}

/**
 * An allocator for `count` update vectors of `length` floats plus `extraBytes` (e.g. an
 * accumulator), backed by one arena when it fits in wasm32 memory and by the JS heap otherwise.
 */
export function updateAllocator(
  count: number,
  length: number,
  extraBytes: number,
): (length: number) => Float32Array {
  const arena = KernelArena.create(count * KernelArena.footprint(length, 4) + extraBytes);
  return (n) => arena?.float32(n) ?? new Float32Array(n);
}
