import { sha256 } from '@noble/hashes/sha2.js';
import { canonicalJson } from './canonical-json.js';
import { toHex, utf8 } from './encoding.js';

/** A SHA-256 implementation: 32-byte digest of `bytes`. */
export type Sha256 = (bytes: Uint8Array) => Uint8Array;

// @noble/hashes runs everywhere; Node processes swap in node:crypto (about 20x faster on large
// blobs) with `installNativeSha256` from `@flotilla/protocol/node`.
/** The isomorphic implementation (@noble/hashes). */
export const nobleSha256: Sha256 = (bytes) => sha256(bytes);

let activeSha256: Sha256 = nobleSha256;
let activeSha256Name = '@noble/hashes';

/** Replaces the SHA-256 behind `sha256Bytes`, `sha256Hex`, `domainDigest` and the Merkle hashes in this process. */
export function setSha256(name: string, implementation: Sha256): void {
  activeSha256 = implementation;
  activeSha256Name = name;
}

export function sha256Name(): string {
  return activeSha256Name;
}

/** SHA-256 of bytes (32 bytes) by the implementation installed in this process. */
export function sha256Bytes(bytes: Uint8Array): Uint8Array {
  return activeSha256(bytes);
}

/** Lowercase hex SHA-256 of bytes (64 characters): the content address of a blob. */
export function sha256Hex(bytes: Uint8Array): string {
  return toHex(activeSha256(bytes));
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Signing domains. A signature made for one purpose can never be replayed as another because
 * the domain string is part of the signed digest.
 */
export const SIGNING_DOMAINS = {
  authChallenge: 'flotilla/v1/auth-challenge',
  update: 'flotilla/v1/update',
  task: 'flotilla/v1/task',
  manifest: 'flotilla/v1/adapter-manifest',
  treeHead: 'flotilla/v1/tree-head',
} as const;

export type SigningDomain = (typeof SIGNING_DOMAINS)[keyof typeof SIGNING_DOMAINS];

/** SHA-256( utf8(domain) || 0x00 || utf8(canonicalJson(payload)) ): what ed25519 signs. */
export function domainDigest(domain: SigningDomain, payload: unknown): Uint8Array {
  const head = utf8(domain);
  const body = utf8(canonicalJson(payload));
  const message = new Uint8Array(head.length + 1 + body.length);
  message.set(head, 0);
  message[head.length] = 0;
  message.set(body, head.length + 1);
  return activeSha256(message);
}
