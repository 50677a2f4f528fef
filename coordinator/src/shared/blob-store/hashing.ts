import { createHash } from 'node:crypto';
import { FlotillaError, SHA256_HEX } from '@flotilla/protocol';

export function assertDigest(digest: string): void {
  if (!SHA256_HEX.test(digest))
    throw new FlotillaError('BAD_REQUEST', 'blob digest must be lowercase hex SHA-256');
}

/**
 * Passes `source` chunk by chunk to `onChunk` (none: the bytes are only hashed) with a byte cap,
 * hashing on the way; checks the digest at the end. Never holds more than one chunk. Returns the
 * byte count.
 */
export async function streamVerified(
  digest: string,
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  maxBytes: number,
  onChunk?: (chunk: Uint8Array) => void | Promise<void>,
): Promise<number> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of source) {
    bytes += chunk.length;
    if (bytes > maxBytes) throw new FlotillaError('BLOB_TOO_LARGE', `blob exceeds ${maxBytes} bytes`);
    hash.update(chunk);
    // Awaited only when it returned a promise: most chunks are only gathered.
    const pending = onChunk?.(chunk);
    if (pending) await pending;
  }
  const actual = hash.digest('hex');
  if (actual !== digest)
    throw new FlotillaError('DIGEST_MISMATCH', `blob hashes to ${actual}, not ${digest}`);
  return bytes;
}

/** Yields `bytes` in views of at most `size` bytes (no copy). */
export function* sliceChunks(bytes: Uint8Array, size: number): Iterable<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.subarray(offset, offset + size);
}

/** Clamps a requested range to a blob of `size` bytes; the whole blob when none is given. */
export function clampRange(
  size: number,
  range: { start: number; endInclusive: number } | undefined,
): { start: number; endInclusive: number } {
  if (!range) return { start: 0, endInclusive: size - 1 };
  return { start: Math.max(0, range.start), endInclusive: Math.min(range.endInclusive, size - 1) };
}

/** Collects what a reader yields (a range the caller bounded); null when the blob is absent. */
export async function readAll(
  reader: { chunks: AsyncIterable<Uint8Array> } | null,
): Promise<Uint8Array | null> {
  if (!reader) return null;
  const parts: Uint8Array[] = [];
  for await (const chunk of reader.chunks) parts.push(chunk);
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * A body sent for a digest already stored: hashed and capped like a new upload but not written;
 * a match refreshes the stored blob's last use (`touch`).
 */
export async function verifyAgainstStored(
  store: { touch(digest: string): Promise<boolean> },
  digest: string,
  source: AsyncIterable<Uint8Array>,
  maxBytes: number,
): Promise<{ bytes: number; stored: false }> {
  const bytes = await streamVerified(digest, source, maxBytes);
  await store.touch(digest);
  return { bytes, stored: false };
}
