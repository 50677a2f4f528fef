import { FlotillaError } from '../errors.js';
import { EMPTY_TREE_ROOT, MERKLE_HASH_BYTES, merkleNodeHash, sameHash } from './hash.js';
import { checkTreeSize, merkleSubtreeHash, splitPoint, type SubtreeHash } from './tree-hash.js';
import type { MerkleCheck } from './merkle-check.js';
import { climbOneLevel, type PathPosition } from './path-position.js';

/**
 * The proof that the tree of the first `oldSize` leaves is a prefix of the tree of the first
 * `newSize` (RFC 9162 §2.1.4.1, PROOF(m, D[n]) = SUBPROOF(m, D[n], true)). Empty when the sizes
 * are equal or the old tree is empty.
 */
export function consistencyProof(
  leafHashes: readonly Uint8Array[],
  oldSize: number,
  newSize: number,
): Uint8Array[] {
  checkTreeSize(leafHashes, newSize);
  return consistencyPath((start, end) => merkleSubtreeHash(leafHashes, start, end), oldSize, newSize);
}

/** `consistencyProof` over any source of subtree hashes (see `inclusionPath`). */
export function consistencyPath(subtree: SubtreeHash, oldSize: number, newSize: number): Uint8Array[] {
  if (!Number.isSafeInteger(oldSize) || oldSize < 0 || oldSize > newSize)
    throw new FlotillaError('BAD_REQUEST', `old tree size ${oldSize} is not between 0 and ${newSize}`);
  if (oldSize === 0) return [];
  const proof: Uint8Array[] = [];
  // SUBPROOF, unrolled: descend towards the old tree's right edge, recording the subtree beside
  // each step. `whole` is the SUBPROOF flag b: true while the old tree's root is still the
  // whole range, so it is known to the verifier and need not be sent.
  let start = 0;
  let end = newSize;
  let m = oldSize;
  let whole = true;
  while (m !== end - start) {
    const k = splitPoint(end - start);
    if (m <= k) {
      proof.push(subtree(start + k, end));
      end = start + k;
    } else {
      proof.push(subtree(start, start + k));
      start += k;
      m -= k;
      whole = false;
    }
  }
  if (!whole) proof.push(subtree(start, end));
  return proof.reverse();
}

/** Checks that `oldRoot` (size `oldSize`) and `newRoot` (size `newSize`) are heads of one append-only log (§2.1.4.2). */
export function verifyConsistency(options: {
  oldSize: number;
  newSize: number;
  oldRoot: Uint8Array;
  newRoot: Uint8Array;
  proof: readonly Uint8Array[];
}): MerkleCheck {
  const { oldSize, newSize, oldRoot, newRoot, proof } = options;
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize) || oldSize < 0 || oldSize > newSize)
    return { ok: false, reason: `old size ${oldSize} is not between 0 and the new size ${newSize}` };
  if (oldSize === 0 || oldSize === newSize) {
    if (proof.length !== 0)
      return { ok: false, reason: `the proof should be empty, it has ${proof.length} hashes` };
    if (oldSize === 0) {
      return sameHash(oldRoot, EMPTY_TREE_ROOT)
        ? { ok: true }
        : { ok: false, reason: 'the old root is not the empty tree root' };
    }
    return sameHash(oldRoot, newRoot)
      ? { ok: true }
      : { ok: false, reason: 'equal sizes with different roots' };
  }
  if (proof.length === 0) return { ok: false, reason: 'the proof is empty' };
  for (const [i, hash] of proof.entries())
    if (hash.length !== MERKLE_HASH_BYTES)
      return { ok: false, reason: `proof hash ${i} is not ${MERKLE_HASH_BYTES} bytes` };
  // When the old tree is a complete subtree, its root is the first node of the path and the
  // proof leaves it out.
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : [...proof];
  // The old tree's right edge: skip the levels where it is a right child, whose hash is inside
  // the first path node.
  const position: PathPosition = { fn: oldSize - 1, sn: newSize - 1 };
  while (position.fn % 2 === 1) {
    position.fn = (position.fn - 1) / 2;
    position.sn = Math.floor(position.sn / 2);
  }
  const [first, ...rest] = path;
  if (first === undefined) return { ok: false, reason: 'the proof is empty' };
  // fr rebuilds the old root from the nodes left of its right edge; sr rebuilds the new root
  // from every node.
  let fr = first;
  let sr = first;
  for (const c of rest) {
    if (position.sn === 0)
      return { ok: false, reason: `the proof has ${proof.length} hashes, more than the path needs` };
    if (climbOneLevel(position)) {
      fr = merkleNodeHash(c, fr);
      sr = merkleNodeHash(c, sr);
    } else {
      sr = merkleNodeHash(sr, c);
    }
  }
  if (position.sn !== 0)
    return { ok: false, reason: `the proof has ${proof.length} hashes, fewer than the path needs` };
  if (!sameHash(fr, oldRoot)) return { ok: false, reason: 'the proof does not rebuild the old root' };
  if (!sameHash(sr, newRoot)) return { ok: false, reason: 'the proof does not rebuild the new root' };
  return { ok: true };
}

function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}
