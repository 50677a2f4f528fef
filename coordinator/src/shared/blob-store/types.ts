/** A content-addressed store of immutable blobs keyed by lowercase hex SHA-256. */
export interface BlobStore {
  has(digest: string): Promise<boolean>;
  get(digest: string): Promise<Uint8Array | null>;
  /** Stores bytes; throws FlotillaError('DIGEST_MISMATCH') if their SHA-256 is not `digest`. */
  put(digest: string, bytes: Uint8Array): Promise<void>;
  /** Size in bytes, or null when absent. */
  size(digest: string): Promise<number | null>;
  /**
   * Streams bytes in, hashing on the way. Throws FlotillaError('BLOB_TOO_LARGE') as soon as more
   * than `maxBytes` arrive (the caller stops reading) and 'DIGEST_MISMATCH' at the end.
   */
  putStream(
    digest: string,
    source: AsyncIterable<Uint8Array>,
    options: { maxBytes: number },
  ): Promise<{ bytes: number }>;
  /** Bytes [start, endInclusive]; null when absent. */
  getRange(digest: string, start: number, endInclusive: number): Promise<Uint8Array | null>;
}
