import { createHash } from 'node:crypto';
import { FlotillaError, SHA256_HEX } from '@flotilla/protocol';

export function assertDigest(digest: string): void {
  if (!SHA256_HEX.test(digest))
    throw new FlotillaError('BAD_REQUEST', 'blob digest must be lowercase hex SHA-256');
}

/** Reads `source` into memory with a byte cap, hashing on the way; checks the digest at the end. */
export async function collectVerified(
  digest: string,
  source: AsyncIterable<Uint8Array>,
  maxBytes: number,
  onChunk?: (chunk: Uint8Array) => void | Promise<void>,
): Promise<{ bytes: number; chunks: Uint8Array[] }> {
  const hash = createHash('sha256');
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of source) {
    bytes += chunk.length;
    if (bytes > maxBytes) throw new FlotillaError('BLOB_TOO_LARGE', `blob exceeds ${maxBytes} bytes`);
    hash.update(chunk);
    if (onChunk) await onChunk(chunk);
    else chunks.push(chunk);
  }
  const actual = hash.digest('hex');
  if (actual !== digest)
    throw new FlotillaError('DIGEST_MISMATCH', `blob hashes to ${actual}, not ${digest}`);
  return { bytes, chunks };
}
