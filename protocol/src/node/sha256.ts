import { hash } from 'node:crypto';
import { setSha256, type Sha256 } from '../digest.js';

/**
 * SHA-256 by node:crypto (OpenSSL), one call: `hash` makes no Hash object, as `createHash` does,
 * about 1 µs against 1.5–2.3 µs for the short inputs of Merkle nodes and round-log leaves.
 */
export const nativeSha256: Sha256 = (bytes) => new Uint8Array(hash('sha256', bytes, 'buffer'));

/** Makes `sha256Bytes`, `sha256Hex`, `domainDigest` and the Merkle hashes use node:crypto in this process. */
export function installNativeSha256(): void {
  setSha256('node:crypto', nativeSha256);
}
