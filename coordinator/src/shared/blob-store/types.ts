/** Bytes [start, endInclusive] of a blob, both within its size. */
export interface ByteRange {
  start: number;
  endInclusive: number;
}

/** An open read of a blob: its whole size, and the requested bytes as bounded chunks. */
export interface BlobReader {
  /** Size of the whole blob, bytes. */
  size: number;
  /**
   * The bytes (the range asked for, else all), in chunks of at most `BLOB_READ_CHUNK_BYTES`.
   * Pulled on demand: a reader that stops pulling holds one chunk, never the blob.
   */
  chunks: AsyncIterable<Uint8Array>;
  /** Releases the file handle (or nothing); idempotent. Call it when not reading to the end. */
  close(): Promise<void>;
}

/** One stored blob as listed for garbage collection. */
export interface BlobListing {
  digest: string;
  bytes: number;
  /** Epoch ms of the last write or `touch` (local store: the file's mtime). */
  lastUsedAt: number;
}

/**
 * A content-addressed store of immutable blobs keyed by lowercase hex SHA-256. Each blob has a
 * last-use time (written, re-uploaded or touched) that garbage collection reads: a blob used
 * recently is never collected (see blob-gc.ts).
 */
export interface BlobStore {
  has(digest: string): Promise<boolean>;
  /** The whole blob in memory; null when absent. For blobs whose size the caller has bounded. */
  get(digest: string): Promise<Uint8Array | null>;
  /**
   * Several whole blobs, in the order asked (null where absent), as `get` would return them: for a
   * job that reads a batch of bounded blobs (a shard of deltas), at a fraction of the CPU of one
   * `get` each. The local store reads them synchronously, letting the event loop run between
   * slices of `SYNC_READ_SLICE_BYTES`; the Redis store asks for all of them in one command.
   * With `into`, the local store places the blobs in that memory while it has room (read-arena.ts);
   * the Redis store, whose client allocates its own buffers, does not use it.
   */
  getMany(digests: readonly string[], options?: { into?: ReadMemory }): Promise<Array<Uint8Array | null>>;
  /**
   * Stores bytes; throws FlotillaError('DIGEST_MISMATCH') if their SHA-256 is not `digest`. Idempotent:
   * when the blob exists it is not rewritten, only its last-use time refreshed.
   */
  put(digest: string, bytes: Uint8Array): Promise<void>;
  /** Size in bytes, or null when absent. */
  size(digest: string): Promise<number | null>;
  /**
   * Streams bytes in, hashing on the way. Throws FlotillaError('BLOB_TOO_LARGE') as soon as more
   * than `maxBytes` arrive (the caller stops reading) and 'DIGEST_MISMATCH' at the end. When the
   * blob already exists the body is hashed and capped the same way but not written (`stored:
   * false`), and a body that matches refreshes the blob's last-use time.
   */
  putStream(
    digest: string,
    source: AsyncIterable<Uint8Array>,
    options: { maxBytes: number },
  ): Promise<{ bytes: number; stored: boolean }>;
  /** Bytes [start, endInclusive]; null when absent. */
  getRange(digest: string, start: number, endInclusive: number): Promise<Uint8Array | null>;
  /** Opens a blob (or a range of it) for streaming; null when absent. */
  openRead(digest: string, range?: ByteRange): Promise<BlobReader | null>;
  /** Refreshes the blob's last-use time; false when absent. */
  touch(digest: string): Promise<boolean>;
  /** Every stored blob, for garbage collection (order unspecified). */
  list(): AsyncIterable<BlobListing>;
  /**
   * Deletes the blob if it was last used before `unusedSince` (epoch ms), checked again at the
   * moment of deletion so a blob re-uploaded or touched meanwhile survives. True when deleted.
   */
  deleteIfUnused(digest: string, unusedSince: number): Promise<boolean>;
  /**
   * Removes what uploads that died with their process left behind, older than `olderThan`
   * (epoch ms); returns how many. (The Redis store's temp keys expire by themselves: 0.)
   */
  removeStaleTemps(olderThan: number): Promise<number>;
}

/** Memory a batch read may place blobs in: a view of `byteLength` bytes, or null when it is full. */
export interface ReadMemory {
  take(byteLength: number): Uint8Array | null;
}

/** Largest chunk a blob read yields (and the Redis store reads or appends per command): 256 KiB. */
export const BLOB_READ_CHUNK_BYTES = 256 * 1024;

/**
 * Bytes the local store's `getMany` reads before letting the event loop run again: 8 MiB, a few
 * milliseconds of reading, well inside any lock renewal or heartbeat.
 */
export const SYNC_READ_SLICE_BYTES = 8 * 1024 ** 2;
