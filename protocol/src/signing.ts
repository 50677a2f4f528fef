import nacl from 'tweetnacl';
import { domainDigest, nobleSha256, setSha256, type SigningDomain } from './digest.js';
import { fromBase64, toBase64 } from './encoding.js';

/** An ed25519 key pair in tweetnacl's format: 32-byte public key, 64-byte secret key (seed || public). */
export interface SigningKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

export function generateSigningKeyPair(): SigningKeyPair {
  return nacl.sign.keyPair();
}

export function keyPairFromSeed(seed: Uint8Array): SigningKeyPair {
  return nacl.sign.keyPair.fromSeed(seed);
}

/** Raw ed25519 verification of `signature` over `message` by `publicKey`. */
export type Ed25519Verify = (message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array) => boolean;

const tweetnaclVerify: Ed25519Verify = (message, signature, publicKey) =>
  nacl.sign.detached.verify(message, signature, publicKey);

let activeVerify: Ed25519Verify = tweetnaclVerify;
let activeVerifierName = 'tweetnacl';

/**
 * Replaces the ed25519 verifier (Node installs node:crypto's native one through
 * `@flotilla/protocol/node`). Both implement RFC 8032, so results are identical.
 */
export function setEd25519Verifier(name: string, verify: Ed25519Verify): void {
  activeVerify = verify;
  activeVerifierName = name;
}

export function ed25519VerifierName(): string {
  return activeVerifierName;
}

/** Raw ed25519 signing of `message` with a tweetnacl-format 64-byte secret key. */
export type Ed25519Sign = (message: Uint8Array, secretKey: Uint8Array) => Uint8Array;

const tweetnaclSign: Ed25519Sign = (message, secretKey) => nacl.sign.detached(message, secretKey);

let activeSign: Ed25519Sign = tweetnaclSign;
let activeSignerName = 'tweetnacl';

/**
 * Replaces the ed25519 signer (Node: node:crypto, ~100x faster than tweetnacl's 4 ms here). RFC
 * 8032 signatures are deterministic, so every implementation gives the same bytes.
 */
export function setEd25519Signer(name: string, sign: Ed25519Sign): void {
  activeSign = sign;
  activeSignerName = name;
}

export function ed25519SignerName(): string {
  return activeSignerName;
}

/** Signs the domain-separated digest of `payload`; returns a base64 signature (64 bytes). */
export function signPayload(domain: SigningDomain, payload: unknown, secretKey: Uint8Array): string {
  return toBase64(activeSign(domainDigest(domain, payload), secretKey));
}

/**
 * Verifies a base64 signature made by `signPayload`. Returns false (never throws) for a malformed
 * key or signature, so a forged message and a garbled one are refused the same way.
 */
export function verifyPayload(
  domain: SigningDomain,
  payload: unknown,
  signatureB64: string,
  publicKeyB64: string,
): boolean {
  let signature: Uint8Array;
  let publicKey: Uint8Array;
  try {
    signature = fromBase64(signatureB64);
    publicKey = fromBase64(publicKeyB64);
  } catch {
    return false;
  }
  if (signature.length !== nacl.sign.signatureLength || publicKey.length !== nacl.sign.publicKeyLength)
    return false;
  let digest: Uint8Array;
  try {
    digest = domainDigest(domain, payload);
  } catch {
    return false;
  }
  return activeVerify(digest, signature, publicKey);
}

export { tweetnaclVerify, tweetnaclSign };

/** Back to the isomorphic implementations (tweetnacl, @noble/hashes): for benchmarks and tests. */
export function useIsomorphicCrypto(): void {
  setEd25519Verifier('tweetnacl', tweetnaclVerify);
  setEd25519Signer('tweetnacl', tweetnaclSign);
  setSha256('@noble/hashes', nobleSha256);
}
