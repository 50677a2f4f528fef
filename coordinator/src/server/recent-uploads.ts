/** Default bytes of recent device uploads kept in memory per coordinator process: 64 MiB. */
export const DEFAULT_RECENT_UPLOAD_BYTES = 64 * 1024 ** 2;

/** What an upload's body is read through while it is copied aside. */
export interface UploadCopy {
  /** The body, chunk by chunk as it arrives, unchanged. */
  source: AsyncIterable<Uint8Array>;
  /** Keeps the copy under `digest`; call it only once the store has verified the bytes hash to it. */
  keep(digest: string): void;
}

/**
 * Device uploads kept in memory between their PUT and the `update:submit` naming them. The store
 * hashed the bytes on the way in and stored them under that digest, so a submission is validated
 * from this copy without reading the file back and hashing it a second time. Bounded in bytes
 * (oldest out first); a digest not held here is read from the store and hashed as before.
 */
export class RecentUploads {
  private readonly entries = new Map<string, Uint8Array>();
  private held = 0;

  constructor(private readonly maxBytes = DEFAULT_RECENT_UPLOAD_BYTES) {}

  /** Bytes held now. */
  get bytes(): number {
    return this.held;
  }

  /**
   * Copies a body of `declaredBytes` (its content-length) while the store reads it. Bodies without
   * a declared size, or larger than a quarter of the budget, pass through without a copy.
   */
  copy(body: AsyncIterable<Uint8Array>, declaredBytes: number): UploadCopy {
    if (!Number.isSafeInteger(declaredBytes) || declaredBytes <= 0 || declaredBytes > this.maxBytes / 4)
      return { source: body, keep: () => undefined };
    // One allocation of the declared size: the chunks' own buffers are not held. It is not zeroed
    // (400 kB of memset per delta): `keep` holds it only once the body has filled every byte.
    const unfilled = Buffer.allocUnsafeSlow(declaredBytes);
    const target = new Uint8Array(unfilled.buffer, unfilled.byteOffset, declaredBytes);
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

  /** The verified bytes of `digest`, when held. */
  get(digest: string): Uint8Array | undefined {
    return this.entries.get(digest);
  }

  /** Drops `digest` (its update was accepted: nothing here reads it again). */
  forget(digest: string): void {
    const bytes = this.entries.get(digest);
    if (!bytes) return;
    this.entries.delete(digest);
    this.held -= bytes.length;
  }

  private remember(digest: string, bytes: Uint8Array): void {
    this.forget(digest);
    this.entries.set(digest, bytes);
    this.held += bytes.length;
    // Map iteration is insertion order: the first key is the oldest upload.
    for (const [oldest] of this.entries) {
      if (this.held <= this.maxBytes) break;
      this.forget(oldest);
    }
  }
}
