import { createHash } from 'node:crypto';
import { setSha256, type Sha256 } from '../digest.js';

/** SHA-256 by node:crypto (OpenSSL). */
export const nativeSha256: Sha256 = (bytes) => new Uint8Array(createHash('sha256').update(bytes).digest());

/** Makes `sha256Hex` and `domainDigest` use node:crypto in this process. */
export function installNativeSha256(): void {
  setSha256('node:crypto', nativeSha256);
}
