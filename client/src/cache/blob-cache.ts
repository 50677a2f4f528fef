import { FlotillaError, SHA256_HEX, sha256Hex } from '@flotilla/protocol';

/**
 * A content-addressed local store of blobs (base models, adapters, deltas) keyed by their
 * lowercase hex SHA-256. `put` verifies the digest, so whatever `get` returns is what was asked for.
 */
export interface BlobCache {
  has(digest: string): Promise<boolean>;
  /** The bytes stored under `digest`, or null when absent. */
  get(digest: string): Promise<Uint8Array | null>;
  /** Stores `bytes`; throws DIGEST_MISMATCH when they do not hash to `digest`. */
  put(digest: string, bytes: Uint8Array): Promise<void>;
  delete(digest: string): Promise<void>;
  /** A small named record (e.g. the adapter state), overwritten atomically. */
  readRecord(name: string): Promise<string | null>;
  writeRecord(name: string, text: string): Promise<void>;
}

/** Throws unless `bytes` hash to `digest` (a lowercase hex SHA-256). */
export function assertDigest(digest: string, bytes: Uint8Array): void {
  if (!SHA256_HEX.test(digest)) throw new FlotillaError('BAD_REQUEST', `not a sha256 digest: ${digest}`);
  const actual = sha256Hex(bytes);
  if (actual !== digest)
    throw new FlotillaError('DIGEST_MISMATCH', `blob hashes to ${actual}, expected ${digest}`, {
      details: { expected: digest, actual },
    });
}

const RECORD_NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;

export function assertRecordName(name: string): void {
  if (!RECORD_NAME.test(name)) throw new FlotillaError('BAD_REQUEST', `invalid cache record name: ${name}`);
}

/** Keeps blobs in process memory: for tests and simulated devices. */
export class MemoryBlobCache implements BlobCache {
  private readonly blobs = new Map<string, Uint8Array>();
  private readonly records = new Map<string, string>();

  has(digest: string): Promise<boolean> {
    return Promise.resolve(this.blobs.has(digest));
  }

  get(digest: string): Promise<Uint8Array | null> {
    return Promise.resolve(this.blobs.get(digest) ?? null);
  }

  put(digest: string, bytes: Uint8Array): Promise<void> {
    assertDigest(digest, bytes);
    this.blobs.set(digest, bytes.slice());
    return Promise.resolve();
  }

  delete(digest: string): Promise<void> {
    this.blobs.delete(digest);
    return Promise.resolve();
  }

  readRecord(name: string): Promise<string | null> {
    assertRecordName(name);
    return Promise.resolve(this.records.get(name) ?? null);
  }

  writeRecord(name: string, text: string): Promise<void> {
    assertRecordName(name);
    this.records.set(name, text);
    return Promise.resolve();
  }
}
