/** Default bytes of recent device uploads kept in memory per coordinator process: 64 MiB. */
export const DEFAULT_RECENT_UPLOAD_BYTES = 64 * 1024 ** 2;

/** What an upload's body is read through while it is copied aside. */
export interface UploadCopy {
  /** The body, chunk by chunk as it arrives, unchanged. */
  source: AsyncIterable<Uint8Array>;
  /** Keeps the copy under `digest`; call it only once the store has verified the bytes hash to it. */
  keep(digest: string): void;
}

/** Kept bytes lent to one reader; they stay unchanged until `release` (call it exactly once). */
export interface BorrowedUpload {
  bytes: Uint8Array;
  release(): void;
}

interface Held {
  bytes: Uint8Array;
  /** Readers that borrowed the bytes and have not released them. */
  readers: number;
}

/**
 * Device uploads kept in memory between their PUT and the `update:submit` naming them. The store
 * hashed the bytes on the way in and stored them under that digest, so a submission is validated
 * from this copy without reading the file back and hashing it a second time. Bounded in bytes
 * (oldest out first); a digest not held here is read from the store and hashed as before.
 *
 * The copies' buffers are reused: a fresh 400 kB buffer per upload cost more in page faults and
 * garbage collection than reading the file back did (docs/benchmarks.md, ingest). A buffer goes
 * back to the pool only when it is out of the map and no reader holds it (`borrow`), so the bytes a
 * validation reads cannot change under it.
 */
export class RecentUploads {
  private readonly entries = new Map<string, Held>();
  private held = 0;
  /** Unused buffers by byte length (uploads of one task all have the same size). */
  private readonly free = new Map<number, ArrayBuffer[]>();
  private freeBytes = 0;
  private readonly maxFreeBytes: number;

  constructor(private readonly maxBytes = DEFAULT_RECENT_UPLOAD_BYTES) {
    this.maxFreeBytes = maxBytes / 4;
  }

  /** Bytes held now (not counting unused pooled buffers). */
  get bytes(): number {
    return this.held;
  }

  /** Bytes of unused buffers kept for the next uploads. */
  get pooledBytes(): number {
    return this.freeBytes;
  }

  /**
   * Copies a body of `declaredBytes` (its content-length) while the store reads it. Bodies without
   * a declared size, or larger than a quarter of the budget, pass through without a copy.
   */
  copy(body: AsyncIterable<Uint8Array>, declaredBytes: number): UploadCopy {
    if (!Number.isSafeInteger(declaredBytes) || declaredBytes <= 0 || declaredBytes > this.maxBytes / 4)
      return { source: body, keep: () => undefined };
    // One buffer of the declared size: the chunks' own buffers are not held. Neither a pooled nor a
    // new one is zeroed (400 kB of memset per delta): `keep` holds it only once the body has filled
    // every byte. A copy that is never kept is left to the garbage collector.
    const target = new Uint8Array(this.takeBuffer(declaredBytes));
    let filled = 0;
    const source = (async function* () {
      for await (const chunk of body) {
        if (filled + chunk.length <= declaredBytes) target.set(chunk, filled);
        filled += chunk.length;
        yield chunk;
      }
    })();
    return {
      source,
      keep: (digest) => {
        if (filled === declaredBytes) this.remember(digest, target);
      },
    };
  }

  /** The verified bytes of `digest`, when held, lent until `release`. */
  borrow(digest: string): BorrowedUpload | undefined {
    const entry = this.entries.get(digest);
    if (!entry) return undefined;
    entry.readers += 1;
    let released = false;
    return {
      bytes: entry.bytes,
      release: () => {
        if (released) return;
        released = true;
        entry.readers -= 1;
        // Forgotten or pushed out while it was read: the last reader gives the buffer back.
        if (entry.readers === 0 && this.entries.get(digest) !== entry) this.recycle(entry.bytes);
      },
    };
  }

  /** Drops `digest` (its update was accepted: nothing here reads it again). */
  forget(digest: string): void {
    const entry = this.entries.get(digest);
    if (!entry) return;
    this.entries.delete(digest);
    this.held -= entry.bytes.length;
    if (entry.readers === 0) this.recycle(entry.bytes);
  }

  private remember(digest: string, bytes: Uint8Array): void {
    this.forget(digest);
    this.entries.set(digest, { bytes, readers: 0 });
    this.held += bytes.length;
    // Map iteration is insertion order: the first key is the oldest upload.
    for (const [oldest] of this.entries) {
      if (this.held <= this.maxBytes) break;
      this.forget(oldest);
    }
  }

  private takeBuffer(size: number): ArrayBuffer {
    const pooled = this.free.get(size)?.pop();
    if (pooled === undefined) return Buffer.allocUnsafeSlow(size).buffer;
    this.freeBytes -= size;
    return pooled;
  }

  private recycle(bytes: Uint8Array): void {
    const { buffer } = bytes;
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength !== bytes.length) return;
    if (this.freeBytes + buffer.byteLength > this.maxFreeBytes) return;
    const list = this.free.get(buffer.byteLength);
    if (list) list.push(buffer);
    else this.free.set(buffer.byteLength, [buffer]);
    this.freeBytes += buffer.byteLength;
  }
}
