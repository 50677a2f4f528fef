import { describe, expect, it } from 'vitest';
import { fromHex, toHex, utf8 } from '../encoding.js';
import { at } from '../checked-index.js';
import { consistencyProof, verifyConsistency } from './consistency-proof.js';
import { EMPTY_TREE_ROOT, merkleLeafHash, merkleNodeHash } from './hash.js';
import { inclusionProof, verifyInclusion } from './inclusion-proof.js';
import { merkleRoot } from './tree-hash.js';
import { CONSISTENCY, ENTRIES, INCLUSION, ROOTS } from '../../test/support/index.js';

// Published Certificate Transparency test vectors (test/support/ct-vectors.ts). Their leaf numbers
// are 1-based; ours are 0-based indexes, so "leaf 6 of 8" there is index 5 here.

const leafHashes = ENTRIES.map((entry) => merkleLeafHash(fromHex(entry)));
const root = (size: number): Uint8Array => fromHex(at(ROOTS, size - 1));
// A hash that belongs to nothing in the tree (the upstream suite's "some hash").
const SOME_HASH = fromHex('abacaba000000000000000000000000000000000000000000060061e00123456');

function flipBit(proof: readonly Uint8Array[], i: number, mask: number): Uint8Array[] {
  return proof.map((hash, j) => (j === i ? hash.map((byte, b) => (b === 0 ? byte ^ mask : byte)) : hash));
}

describe('RFC 9162 hashes: published values', () => {
  it('hashes the empty tree, an empty leaf, a leaf and a node as the CT suites do', () => {
    expect(toHex(EMPTY_TREE_ROOT)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(toHex(merkleLeafHash(new Uint8Array(0)))).toBe(
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    );
    expect(toHex(merkleLeafHash(utf8('L123456')))).toBe(
      '395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56',
    );
    expect(toHex(merkleNodeHash(utf8('N123'), utf8('N456')))).toBe(
      'aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb',
    );
  });

  it('gives the published root for every size 0..8 of the eight reference entries', () => {
    expect(toHex(merkleRoot(leafHashes, 0))).toBe(toHex(EMPTY_TREE_ROOT));
    for (let size = 1; size <= 8; size++)
      expect(toHex(merkleRoot(leafHashes, size)), `size ${size}`).toBe(ROOTS[size - 1]);
  });
});

describe('inclusion proofs: published paths', () => {
  it.each(INCLUSION)('leaf $leaf of $size: generated path equals the published one and verifies', (v) => {
    const index = v.leaf - 1;
    expect(inclusionProof(leafHashes, index, v.size).map(toHex)).toEqual(v.proof);
    const check = verifyInclusion({
      index,
      size: v.size,
      leafHash: at(leafHashes, index),
      proof: v.proof.map(fromHex),
      root: root(v.size),
    });
    expect(check).toEqual({ ok: true });
  });

  it.each(INCLUSION.filter((v) => v.proof.length > 0))('leaf $leaf of $size: every corruption fails', (v) => {
    const index = v.leaf - 1;
    const proof = v.proof.map(fromHex);
    const good = { index, size: v.size, leafHash: at(leafHashes, index), proof, root: root(v.size) };
    const probes: Array<[string, typeof good]> = [
      ['index - 1', { ...good, index: index - 1 }],
      ['index + 1', { ...good, index: index + 1 }],
      ['index ^ 2', { ...good, index: index ^ 2 }],
      ['size * 2', { ...good, size: v.size * 2 }],
      ['size / 2', { ...good, size: Math.floor(v.size / 2) }],
      ['wrong leaf', { ...good, leafHash: SOME_HASH }],
      ['empty-tree root', { ...good, root: EMPTY_TREE_ROOT }],
      ['some other root', { ...good, root: SOME_HASH }],
      ['trailing garbage', { ...good, proof: [...proof, new Uint8Array(0)] }],
      ['trailing root', { ...good, proof: [...proof, good.root] }],
      ['preceding garbage', { ...good, proof: [new Uint8Array(0), ...proof] }],
      ['preceding root', { ...good, proof: [good.root, ...proof] }],
      ['removed last hash', { ...good, proof: proof.slice(0, -1) }],
      ...proof.map((_, i): [string, typeof good] => [
        `bit 3 of proof[${i}]`,
        { ...good, proof: flipBit(proof, i, 8) },
      ]),
    ];
    if (proof.length > 1)
      probes.push(['inserted hash', { ...good, proof: [at(proof, 0), SOME_HASH, ...proof.slice(1)] }]);
    const accepted = probes.filter(([, probe]) => verifyInclusion(probe).ok).map(([name]) => name);
    expect(accepted).toEqual([]);
  });
});

describe('consistency proofs: published proofs', () => {
  it.each(CONSISTENCY)('$size1 -> $size2: generated proof equals the published one and verifies', (v) => {
    expect(consistencyProof(leafHashes, v.size1, v.size2).map(toHex)).toEqual(v.proof);
    const check = verifyConsistency({
      oldSize: v.size1,
      newSize: v.size2,
      oldRoot: root(v.size1),
      newRoot: root(v.size2),
      proof: v.proof.map(fromHex),
    });
    expect(check).toEqual({ ok: true });
  });

  it.each(CONSISTENCY.filter((v) => v.proof.length > 0))('$size1 -> $size2: every corruption fails', (v) => {
    const proof = v.proof.map(fromHex);
    const good = {
      oldSize: v.size1,
      newSize: v.size2,
      oldRoot: root(v.size1),
      newRoot: root(v.size2),
      proof,
    };
    const probes: Array<[string, typeof good]> = [
      ['old size - 1', { ...good, oldSize: v.size1 - 1 }],
      ['old size + 1', { ...good, oldSize: v.size1 + 1 }],
      ['old size ^ 2', { ...good, oldSize: v.size1 ^ 2 }],
      ['new size * 2', { ...good, newSize: v.size2 * 2 }],
      ['new size / 2', { ...good, newSize: Math.floor(v.size2 / 2) }],
      ['wrong old root', { ...good, oldRoot: SOME_HASH }],
      ['wrong new root', { ...good, newRoot: SOME_HASH }],
      ['swapped roots', { ...good, oldRoot: good.newRoot, newRoot: good.oldRoot }],
      ['empty proof', { ...good, proof: [] }],
      ['trailing garbage', { ...good, proof: [...proof, new Uint8Array(0)] }],
      ['trailing old root', { ...good, proof: [...proof, good.oldRoot] }],
      ['trailing new root', { ...good, proof: [...proof, good.newRoot] }],
      ['preceding garbage', { ...good, proof: [new Uint8Array(0), ...proof] }],
      ['preceding old root', { ...good, proof: [good.oldRoot, ...proof] }],
      ['preceding new root', { ...good, proof: [good.newRoot, ...proof] }],
      ['preceding proof[0]', { ...good, proof: [at(proof, 0), ...proof] }],
      ['truncated', { ...good, proof: proof.slice(0, -1) }],
      ...proof.map((_, i): [string, typeof good] => [
        `bit 4 of proof[${i}]`,
        { ...good, proof: flipBit(proof, i, 16) },
      ]),
    ];
    const accepted = probes.filter(([, probe]) => verifyConsistency(probe).ok).map(([name]) => name);
    expect(accepted).toEqual([]);
  });

  it('accepts only what the edge sizes allow (upstream table)', () => {
    const r1 = utf8("don't care 1");
    const r2 = utf8("don't care 2");
    const empty = EMPTY_TREE_ROOT;
    const check = (
      oldSize: number,
      newSize: number,
      oldRoot: Uint8Array,
      newRoot: Uint8Array,
      proof: Uint8Array[],
    ) => verifyConsistency({ oldSize, newSize, oldRoot, newRoot, proof }).ok;
    expect(check(1, 1, r1, r2, [])).toBe(false);
    expect(check(1, 1, r2, r2, [])).toBe(true);
    expect(check(1, 0, r1, r2, [])).toBe(false);
    expect(check(2, 1, r1, r2, [])).toBe(false);
    expect(check(1, 2, r1, r2, [])).toBe(false);
    expect(check(0, 0, empty, empty, [])).toBe(true);
    expect(check(0, 1, empty, r2, [])).toBe(true);
    expect(check(0, 0, empty, empty, [empty])).toBe(false);
    expect(check(0, 1, empty, empty, [empty])).toBe(false);
    expect(check(1, 1, empty, empty, [empty])).toBe(false);
    // Stricter than upstream: an empty old tree must carry the empty-tree root.
    expect(check(0, 1, r1, r2, [])).toBe(false);
  });
});
