// Shared memory that batch reads reuse. A shard job reads about a hundred deltas per pass (40 MB
// at 100,000 parameters). Given a fresh buffer each, the worker process spent more CPU zeroing new
// pages and collecting garbage (V8 starts a major collection after every few tens of MB of new
// external memory, with the math threads' heaps marked alongside) than reading: in a 1,000-update
// round about 0.6 s of CPU, measured per thread from /proc. An arena is one SharedArrayBuffer,
// reused job after job, which a math thread reads without a copy or a transfer.
import { FlotillaError } from '@flotilla/protocol';
import type { ReadMemory } from './types.js';

/** Blob starts are 8-byte aligned, so a delta file whose header is padded (ours are) has its f32 data aligned too. */
const ALIGN = 8;

/** One shared buffer handed out front to back. */
export class ReadArena implements ReadMemory {
  private used = 0;
  /** Bytes asked for since the last reset, placed or not: what a big enough arena holds. */
  private wanted = 0;

  constructor(readonly buffer: SharedArrayBuffer) {}

  get capacity(): number {
    return this.buffer.byteLength;
  }

  /** Bytes the last batch asked for, aligned as placed. */
  get demand(): number {
    return this.wanted;
  }

  take(byteLength: number): Uint8Array | null {
    if (!Number.isInteger(byteLength) || byteLength < 0)
      throw new FlotillaError('INTERNAL', `cannot take ${byteLength} bytes from a read arena`);
    const start = this.used;
    const aligned = Math.ceil(byteLength / ALIGN) * ALIGN;
    this.wanted += aligned;
    if (start + byteLength > this.capacity) return null;
    this.used = Math.min(this.capacity, start + aligned);
    return new Uint8Array(this.buffer, start, byteLength);
  }

  /** Makes the whole arena free again: every view taken before must be out of use. */
  reset(): void {
    this.used = 0;
    this.wanted = 0;
  }
}

export interface ReadArenaPoolOptions {
  /** Arenas kept between leases (the jobs a process runs at once). */
  keep: number;
  /** Arenas larger than this are not kept. Default 512 MiB. */
  maxArenaBytes?: number;
  /** A pool not leased from for this long lets its arenas go. Default 60 s. */
  idleMs?: number;
}

/**
 * Arenas for the jobs running at once. A lease's arena is as large as the largest batch seen so
 * far; a batch that does not fit still reads (the store allocates the rest, as without an arena)
 * and the next arena is made big enough.
 */
export class ReadArenaPool {
  private readonly free: ReadArena[] = [];
  private readonly keep: number;
  private readonly maxArenaBytes: number;
  private readonly idleMs: number;
  private size = 0;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(options: ReadArenaPoolOptions) {
    if (!Number.isInteger(options.keep) || options.keep < 0)
      throw new RangeError(`read arenas kept must be an integer >= 0, got ${options.keep}`);
    this.keep = options.keep;
    this.maxArenaBytes = options.maxArenaBytes ?? 512 * 1024 ** 2;
    this.idleMs = options.idleMs ?? 60_000;
  }

  /** Arenas held for the next leases. */
  get pooled(): number {
    return this.free.length;
  }

  /**
   * Runs `work` with an arena of its own; the arena is reused once `work` settles, so nothing
   * taken from it may be kept past that (results must be copies).
   */
  async use<T>(work: (arena: ReadArena) => T | Promise<T>): Promise<T> {
    this.stopIdleTimer();
    const arena = this.lease();
    try {
      return await work(arena);
    } finally {
      this.size = Math.max(this.size, Math.min(arena.demand, this.maxArenaBytes));
      arena.reset();
      this.giveBack(arena);
    }
  }

  /** Lets every pooled arena go (the garbage collector frees them). */
  clear(): void {
    this.stopIdleTimer();
    this.free.length = 0;
  }

  private lease(): ReadArena {
    const index = this.free.findIndex((arena) => arena.capacity >= this.size);
    if (index >= 0) return this.free.splice(index, 1)[0] as ReadArena;
    return new ReadArena(new SharedArrayBuffer(this.size));
  }

  private giveBack(arena: ReadArena): void {
    // An arena smaller than the batches now seen would only fall short again.
    if (arena.capacity >= this.size && arena.capacity <= this.maxArenaBytes && this.free.length < this.keep)
      this.free.push(arena);
    if (this.free.length > 0 && this.idleTimer === null) {
      this.idleTimer = setTimeout(() => this.clear(), this.idleMs);
      this.idleTimer.unref();
    }
  }

  private stopIdleTimer(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }
}
