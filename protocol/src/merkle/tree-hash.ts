import { FlotillaError } from '../errors.js';
import { at } from '../checked-index.js';
import { EMPTY_TREE_ROOT, MERKLE_HASH_BYTES, merkleNodeHash } from './hash.js';

/** The largest power of two strictly smaller than `n` (n ≥ 2): where RFC 9162 splits a tree. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH(D[start:end]) from some store of the tree: what proofs are built from. */
export type SubtreeHash = (start: number, end: number) => Uint8Array;

/**
 * MTH(D[start:end]) of RFC 9162 §2.1.1 over leaf hashes (each `merkleLeafHash` of an entry).
 * Left subtree is the largest power of two below the size, so the tree of the first k leaves
 * never changes when leaves are appended: that is what makes consistency proofs possible.
 */
export function merkleSubtreeHash(leafHashes: readonly Uint8Array[], start: number, end: number): Uint8Array {
  const n = end - start;
  if (n === 0) return EMPTY_TREE_ROOT;
  if (n === 1) return at(leafHashes, start);
  const k = splitPoint(n);
  return merkleNodeHash(
    merkleSubtreeHash(leafHashes, start, start + k),
    merkleSubtreeHash(leafHashes, start + k, end),
  );
}

/** The root of the tree of the first `size` leaves (all of them when `size` is omitted). */
export function merkleRoot(leafHashes: readonly Uint8Array[], size: number = leafHashes.length): Uint8Array {
  checkTreeSize(leafHashes, size);
  return merkleSubtreeHash(leafHashes, 0, size);
}

/** Throws BAD_REQUEST unless `size` is a whole number of leaves the log holds, all 32-byte hashes. */
export function checkTreeSize(leafHashes: readonly Uint8Array[], size: number): void {
  if (!Number.isSafeInteger(size) || size < 0 || size > leafHashes.length)
    throw new FlotillaError(
      'BAD_REQUEST',
      `tree size ${size} is not between 0 and the ${leafHashes.length} leaves logged`,
    );
  for (let i = 0; i < size; i++)
    if (at(leafHashes, i).length !== MERKLE_HASH_BYTES)
      throw new FlotillaError('BAD_REQUEST', `leaf hash ${i} is not ${MERKLE_HASH_BYTES} bytes`);
}
