import { FlotillaError } from '../errors.js';
import { MERKLE_HASH_BYTES, merkleNodeHash, sameHash } from './hash.js';
import { checkTreeSize, merkleSubtreeHash, splitPoint, type SubtreeHash } from './tree-hash.js';
import type { MerkleCheck } from './merkle-check.js';
import { climbOneLevel, type PathPosition } from './path-position.js';

/**
 * The audit path of leaf `index` in the tree of the first `size` leaves (RFC 9162 §2.1.3.1):
 * the sibling subtree hashes from the leaf up to the root. Empty for a one-leaf tree.
 */
export function inclusionProof(leafHashes: readonly Uint8Array[], index: number, size: number): Uint8Array[] {
  checkTreeSize(leafHashes, size);
  return inclusionPath((start, end) => merkleSubtreeHash(leafHashes, start, end), index, size);
}

/**
 * `inclusionProof` over any source of subtree hashes: `subtree(start, end)` is MTH(D[start:end]).
 * A stored tree answers it from its complete subtrees, in O(log n) per call.
 */
export function inclusionPath(subtree: SubtreeHash, index: number, size: number): Uint8Array[] {
  if (!Number.isSafeInteger(index) || index < 0 || index >= size)
    throw new FlotillaError('BAD_REQUEST', `leaf index ${index} is not in a tree of ${size} leaves`);
  const path: Uint8Array[] = [];
  // Walk down from the root; each step keeps the half holding the leaf and records the other
  // half's hash. The path lists siblings leaf-first, so the walk's order is reversed at the end.
  let start = 0;
  let end = size;
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (index < start + k) {
      path.push(subtree(start + k, end));
      end = start + k;
    } else {
      path.push(subtree(start, start + k));
      start += k;
    }
  }
  return path.reverse();
}

/** The root that `proof` and `leafHash` imply for leaf `index` of a `size`-leaf tree (§2.1.3.2). */
export function rootFromInclusionProof(options: {
  index: number;
  size: number;
  leafHash: Uint8Array;
  proof: readonly Uint8Array[];
}): Uint8Array | string {
  const { index, size, leafHash, proof } = options;
  if (!Number.isSafeInteger(size) || size < 1) return `tree size ${size} holds no leaf`;
  if (!Number.isSafeInteger(index) || index < 0 || index >= size)
    return `leaf index ${index} is not in a tree of ${size} leaves`;
  if (leafHash.length !== MERKLE_HASH_BYTES) return `leaf hash is not ${MERKLE_HASH_BYTES} bytes`;
  const position: PathPosition = { fn: index, sn: size - 1 };
  let hash = leafHash;
  for (const [i, sibling] of proof.entries()) {
    if (position.sn === 0) return `the proof has ${proof.length} hashes, more than the path to the root`;
    if (sibling.length !== MERKLE_HASH_BYTES) return `proof hash ${i} is not ${MERKLE_HASH_BYTES} bytes`;
    hash = climbOneLevel(position) ? merkleNodeHash(sibling, hash) : merkleNodeHash(hash, sibling);
  }
  if (position.sn !== 0) return `the proof has ${proof.length} hashes, fewer than the path to the root`;
  return hash;
}

/** Checks that `leafHash` is leaf `index` of the `size`-leaf tree whose root is `root`. */
export function verifyInclusion(options: {
  index: number;
  size: number;
  leafHash: Uint8Array;
  proof: readonly Uint8Array[];
  root: Uint8Array;
}): MerkleCheck {
  const computed = rootFromInclusionProof(options);
  if (typeof computed === 'string') return { ok: false, reason: computed };
  if (!sameHash(computed, options.root))
    return { ok: false, reason: `the proof leads to a different root than the tree head's` };
  return { ok: true };
}
