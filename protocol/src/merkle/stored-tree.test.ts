import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../encoding.js';
import { consistencyPath, consistencyProof } from './consistency-proof.js';
import { merkleLeafHash } from './hash.js';
import { inclusionPath, inclusionProof } from './inclusion-proof.js';
import {
  StoredMerkleTree,
  appendToFrontier,
  merkleNodesRead,
  rootFromFrontier,
  subtreeFromNodes,
  type MerkleFrontier,
} from './stored-tree.js';
import { merkleRoot } from './tree-hash.js';
import { ENTRIES, ROOTS } from '../../test/support/index.js';

// The stored tree must give exactly what RFC 9162's recursive definitions give over the whole
// list of leaves (tree-hash.ts, itself checked against the published CT vectors).

const leavesArb = fc
  .array(fc.uint8Array({ maxLength: 8 }), { minLength: 1, maxLength: 80 })
  .map((entries) => entries.map((entry, i) => merkleLeafHash(Uint8Array.from([...entry, i]))));

const hex = (hashes: readonly Uint8Array[]) => hashes.map(toHex);

describe('StoredMerkleTree', () => {
  it('gives the published CT roots for the eight reference entries', () => {
    const tree = new StoredMerkleTree();
    for (const entry of ENTRIES) tree.append(merkleLeafHash(fromHex(entry)));
    expect(toHex(tree.root())).toBe(ROOTS[7]);
    expect(toHex(tree.root(3))).toBe(ROOTS[2]);
  });

  it('every root, inclusion and consistency proof equals the recursive definition (property)', () => {
    fc.assert(
      fc.property(leavesArb, fc.nat(), fc.nat(), (leaves, a, b) => {
        const tree = new StoredMerkleTree();
        for (const leaf of leaves) tree.append(leaf);
        const size = 1 + (a % leaves.length);
        const index = b % size;
        const oldSize = b % (size + 1);
        expect(toHex(tree.root(size))).toBe(toHex(merkleRoot(leaves, size)));
        expect(hex(inclusionPath(tree.subtree, index, size))).toEqual(
          hex(inclusionProof(leaves, index, size)),
        );
        expect(hex(consistencyPath(tree.subtree, oldSize, size))).toEqual(
          hex(consistencyProof(leaves, oldSize, size)),
        );
      }),
      { numRuns: 150 },
    );
  });

  it('refuses a size it does not hold', () => {
    const tree = new StoredMerkleTree();
    tree.append(merkleLeafHash(new Uint8Array(0)));
    expect(() => tree.root(2)).toThrow(/tree size 2/);
  });
});

describe('frontier appends', () => {
  it('keep the root and create exactly the stored tree nodes (property)', () => {
    fc.assert(
      fc.property(leavesArb, (leaves) => {
        const tree = new StoredMerkleTree();
        let frontier: MerkleFrontier = [];
        const created = new Map<string, string>();
        leaves.forEach((leaf, size) => {
          const step = appendToFrontier(frontier, size, leaf);
          frontier = step.frontier;
          for (const node of step.created) created.set(`${node.level}:${node.index}`, toHex(node.hash));
          tree.append(leaf);
          expect(toHex(rootFromFrontier(frontier))).toBe(toHex(merkleRoot(leaves, size + 1)));
        });
        // Every complete subtree of the final tree was created once, with the stored tree's hash.
        for (const [key, hash] of created) {
          const [level, index] = key.split(':').map(Number);
          expect(hash).toBe(toHex(tree.node(level ?? -1, index ?? -1)));
        }
        let complete = 0;
        for (let width = 1; width <= leaves.length; width *= 2) complete += Math.floor(leaves.length / width);
        expect(created.size).toBe(complete);
      }),
      { numRuns: 100 },
    );
  });

  it('refuses a frontier that does not fit the size', () => {
    expect(() => appendToFrontier([], 1, merkleLeafHash(new Uint8Array(0)))).toThrow(/cannot be a tree of 1/);
  });
});

describe('merkleNodesRead', () => {
  it('names every node a proof reads, and no more than log² n of them', () => {
    const tree = new StoredMerkleTree();
    for (let i = 0; i < 1000; i++) tree.append(merkleLeafHash(Uint8Array.of(i % 256, i >> 8)));
    const ids = merkleNodesRead((node) => inclusionPath(subtreeFromNodes(node), 777, 999));
    expect(ids.length).toBeLessThanOrEqual(10 * 10);
    const fetched = new Map(ids.map(({ level, index }) => [`${level}:${index}`, tree.node(level, index)]));
    const fromFetched = subtreeFromNodes((level, index) => {
      const hash = fetched.get(`${level}:${index}`);
      if (!hash) throw new Error(`node ${level}:${index} was not read`);
      return hash;
    });
    expect(hex(inclusionPath(fromFetched, 777, 999))).toEqual(hex(inclusionPath(tree.subtree, 777, 999)));
  });
});
