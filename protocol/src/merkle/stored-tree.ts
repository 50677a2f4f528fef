import { FlotillaError } from '../errors.js';
import { EMPTY_TREE_ROOT, merkleNodeHash } from './hash.js';
import { splitPoint, type SubtreeHash } from './tree-hash.js';

// A log that grows one leaf at a time keeps every COMPLETE subtree it has finished: the node at
// (level, index) covers leaves [index·2^level, (index+1)·2^level). Those nodes never change once
// made, so they can be stored anywhere (memory, a Redis hash), and every subtree RFC 9162's
// definitions ask for is a fold of at most log2(n) of them: proofs and roots cost O(log² n)
// lookups instead of rehashing the log.

/** A stored complete subtree: `(level, index)` covers leaves [index·2^level, (index+1)·2^level). */
export interface MerkleNodeId {
  level: number;
  index: number;
}

/** The hash of a stored complete subtree; throws when the store does not hold it. */
export type MerkleNodeLookup = (level: number, index: number) => Uint8Array;

/**
 * MTH(D[start:end]) from stored complete subtrees. RFC 9162 splits at the largest power of two
 * below the size, so every range a root or proof asks for breaks into aligned complete subtrees.
 */
export function subtreeFromNodes(node: MerkleNodeLookup): SubtreeHash {
  const subtree: SubtreeHash = (start, end) => {
    const n = end - start;
    if (n === 0) return EMPTY_TREE_ROOT;
    const level = Math.log2(n);
    if (Number.isInteger(level) && start % n === 0) return node(level, start / n);
    const k = splitPoint(n);
    return merkleNodeHash(subtree(start, start + k), subtree(start + k, end));
  };
  return subtree;
}

/**
 * The stored nodes `compute` reads, found by running it once over placeholder hashes: a remote
 * store (Redis) fetches exactly these in one round trip, then `compute` runs again on real ones.
 */
export function merkleNodesRead(compute: (node: MerkleNodeLookup) => unknown): MerkleNodeId[] {
  const seen = new Map<string, MerkleNodeId>();
  const placeholder = new Uint8Array(32);
  compute((level, index) => {
    seen.set(`${level}:${index}`, { level, index });
    return placeholder;
  });
  return [...seen.values()];
}

/**
 * The right edge of a tree of `size` leaves: the roots of its complete subtrees in the binary
 * decomposition of `size`, largest (leftmost) first. Enough to append a leaf and to compute the
 * root, so a writer keeps only this (≤ 53 hashes) in its head.
 */
export type MerkleFrontier = readonly Uint8Array[];

/** The nodes one append completes: the leaf itself, then each subtree it closes, bottom up. */
export interface FrontierAppend {
  frontier: Uint8Array[];
  created: Array<MerkleNodeId & { hash: Uint8Array }>;
}

/** Appends leaf `size` (0-based) to the tree whose right edge is `frontier`. */
export function appendToFrontier(
  frontier: MerkleFrontier,
  size: number,
  leafHash: Uint8Array,
): FrontierAppend {
  if (frontier.length !== popcount(size))
    throw new FlotillaError(
      'INTERNAL',
      `a frontier of ${frontier.length} hashes cannot be a tree of ${size} leaves`,
    );
  const next = [...frontier];
  const created: FrontierAppend['created'] = [{ level: 0, index: size, hash: leafHash }];
  let hash = leafHash;
  let level = 0;
  // Each trailing 1 bit of `size` is a complete subtree of equal height just left of the new
  // leaf: merge with it, one level up.
  for (let bits = size; bits % 2 === 1; bits = (bits - 1) / 2) {
    const left = next.pop();
    if (left === undefined) throw new FlotillaError('INTERNAL', 'frontier ended early');
    hash = merkleNodeHash(left, hash);
    level++;
    created.push({ level, index: Math.floor(size / 2 ** level), hash });
  }
  next.push(hash);
  return { frontier: next, created };
}

/** The root of the tree whose right edge is `frontier`: fold from the smallest subtree leftwards. */
export function rootFromFrontier(frontier: MerkleFrontier): Uint8Array {
  let root = frontier.at(-1);
  if (root === undefined) return EMPTY_TREE_ROOT;
  for (let i = frontier.length - 2; i >= 0; i--) {
    const left = frontier[i];
    if (left !== undefined) root = merkleNodeHash(left, root);
  }
  return root;
}

function popcount(n: number): number {
  let count = 0;
  for (let bits = n; bits > 0; bits = Math.floor(bits / 2)) count += bits % 2;
  return count;
}

/**
 * A Merkle tree in memory that keeps every complete subtree (about 2n hashes for n leaves): append
 * is amortised O(1), the root of any earlier size and any proof O(log² n). The verifier's tree.
 */
export class StoredMerkleTree {
  private readonly levels: Uint8Array[][] = [[]];

  get size(): number {
    return this.levels[0]?.length ?? 0;
  }

  append(leafHash: Uint8Array): void {
    let hash = leafHash;
    let index = this.size;
    for (let level = 0; ; level++) {
      const row = this.levels[level] ?? [];
      this.levels[level] = row;
      row.push(hash);
      if (index % 2 === 0) return;
      const left = row[index - 1];
      if (left === undefined) throw new FlotillaError('INTERNAL', 'stored tree lost a node');
      hash = merkleNodeHash(left, hash);
      index = (index - 1) / 2;
    }
  }

  readonly node: MerkleNodeLookup = (level, index) => {
    const hash = this.levels[level]?.[index];
    if (hash === undefined)
      throw new FlotillaError(
        'BAD_REQUEST',
        `the tree holds no complete subtree at level ${level}, index ${index}`,
      );
    return hash;
  };

  /** MTH(D[start:end]) for any range the tree holds. */
  readonly subtree: SubtreeHash = subtreeFromNodes(this.node);

  /** The root of the first `size` leaves (every leaf by default). */
  root(size: number = this.size): Uint8Array {
    this.checkSize(size);
    return this.subtree(0, size);
  }

  private checkSize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.size)
      throw new FlotillaError('BAD_REQUEST', `tree size ${size} is not between 0 and ${this.size}`);
  }
}
