import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { setEd25519Signer, setEd25519Verifier, type Ed25519Sign, type Ed25519Verify } from '../signing.js';

/** DER prefix of an ed25519 SubjectPublicKeyInfo (RFC 8410); the raw 32-byte key follows it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
/** DER prefix of an ed25519 PKCS #8 private key (RFC 8410); the 32-byte seed follows it. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SECRET_KEY_BYTES = 64;
const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
/** Imported keys kept for reuse: a coordinator verifies the same enrolled keys over and over. */
const KEY_CACHE_LIMIT = 16_384;
const keyCache = new Map<string, KeyObject>();

function importPublicKey(publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey).toString('hex');
  const cached = keyCache.get(id);
  if (cached !== undefined) return cached;
  const key = createPublicKey({
    key: Buffer.concat([ED25519_SPKI_PREFIX, publicKey]),
    format: 'der',
    type: 'spki',
  });
  if (keyCache.size >= KEY_CACHE_LIMIT) {
    const oldest = keyCache.keys().next();
    if (oldest.done !== true) keyCache.delete(oldest.value);
  }
  keyCache.set(id, key);
  return key;
}

/**
 * ed25519 verification by node:crypto (OpenSSL), several times faster than tweetnacl. Returns
 * false, never throws, for a malformed key or signature. OpenSSL also refuses signatures whose
 * scalar S is not reduced (S >= L), which tweetnacl accepts; honest signers never produce those.
 */
export const nativeEd25519Verify: Ed25519Verify = (message, signature, publicKey) => {
  if (publicKey.length !== PUBLIC_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
  try {
    return verify(null, message, importPublicKey(publicKey), signature);
  } catch {
    return false;
  }
};

/** A process signs with one or two keys (coordinator, round log): keep their imports. */
const signingKeys = new Map<string, KeyObject>();

function importSecretKey(secretKey: Uint8Array): KeyObject {
  // tweetnacl's secret key is seed || public key; the public half names it in the cache.
  const id = Buffer.from(secretKey.subarray(32)).toString('hex');
  const cached = signingKeys.get(id);
  if (cached !== undefined) return cached;
  const key = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, secretKey.subarray(0, 32)]),
    format: 'der',
    type: 'pkcs8',
  });
  if (signingKeys.size >= 16) signingKeys.clear();
  signingKeys.set(id, key);
  return key;
}

/** ed25519 signing by node:crypto; byte-identical to tweetnacl (RFC 8032 is deterministic). */
export const nativeEd25519Sign: Ed25519Sign = (message, secretKey) => {
  if (secretKey.length !== SECRET_KEY_BYTES) throw new TypeError('ed25519 secret key must be 64 bytes');
  return new Uint8Array(sign(null, message, importSecretKey(secretKey)));
};

/** Makes `signPayload` and `verifyPayload` use node:crypto's ed25519 in this process. */
export function installNativeEd25519(): void {
  setEd25519Verifier('node:crypto', nativeEd25519Verify);
  setEd25519Signer('node:crypto', nativeEd25519Sign);
}
