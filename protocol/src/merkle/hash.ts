import { sha256Bytes as sha256 } from '../digest.js';

// SHA-256 by whichever implementation the process installed (node:crypto in the coordinator:
// every accepted update hashes a leaf and the nodes it completes).
//
// RFC 9162 §2.1.1: leaves and interior nodes are hashed under different one-byte prefixes, so no
// interior node can be passed off as a leaf (second-preimage resistance of the tree).

/** Bytes in every Merkle hash (SHA-256). */
export const MERKLE_HASH_BYTES = 32;

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

/** MTH({}) = SHA-256 of the empty string: the root of a tree with no leaves. */
export const EMPTY_TREE_ROOT: Uint8Array = sha256(new Uint8Array(0));

/** MTH({d}) = SHA-256(0x00 || d): the hash of one log entry. */
export function merkleLeafHash(entry: Uint8Array): Uint8Array {
  const message = new Uint8Array(1 + entry.length);
  message[0] = LEAF_PREFIX;
  message.set(entry, 1);
  return sha256(message);
}

/** SHA-256(0x01 || left || right): the hash of an interior node from its two children. */
export function merkleNodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const message = new Uint8Array(1 + left.length + right.length);
  message[0] = NODE_PREFIX;
  message.set(left, 1);
  message.set(right, 1 + left.length);
  return sha256(message);
}

/** Byte-wise equality of two hashes (they are public, so timing does not matter). */
export function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
