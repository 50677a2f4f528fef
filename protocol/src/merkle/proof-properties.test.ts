import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { at } from '../checked-index.js';
import { toHex } from '../encoding.js';
import { consistencyProof, verifyConsistency } from './consistency-proof.js';
import { merkleLeafHash } from './hash.js';
import { inclusionProof, verifyInclusion } from './inclusion-proof.js';
import { merkleRoot, splitPoint } from './tree-hash.js';

// Distinct entries, so no two leaves share a hash and a proof for one leaf cannot be a proof
// for another by coincidence.
const logArb = fc
  .uniqueArray(fc.uint8Array({ maxLength: 12 }), { minLength: 1, maxLength: 70, selector: toHex })
  .map((entries) => entries.map(merkleLeafHash));

/** Which hash, which byte of it, and a non-zero XOR mask for that byte. */
const alterationArb = fc.record({ which: fc.nat(), byte: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) });
type Alteration = { which: number; byte: number; mask: number };

/** A copy of `hashes` with one byte changed. */
const alter = (hashes: readonly Uint8Array[], { which, byte, mask }: Alteration): Uint8Array[] =>
  hashes.map((hash, j) =>
    j === which % hashes.length ? hash.map((b, k) => (k === byte % hash.length ? b ^ mask : b)) : hash,
  );
const alterOne = (hash: Uint8Array, alteration: Alteration): Uint8Array => at(alter([hash], alteration), 0);

// The shape of a proof straight from RFC 9162's recursive definitions (PATH and SUBPROOF): which
// side each hash joins on. The verifiers walk the path with bit arithmetic instead; a proof made
// for one size can pass for another exactly when both sizes give the same shape. That is why a
// tree head signs its size along with its root.
function pathShape(index: number, size: number): string {
  if (size === 1) return '';
  const k = splitPoint(size);
  return index < k ? `${pathShape(index, k)}R` : `${pathShape(index - k, size - k)}L`;
}
function subproofShape(m: number, n: number, whole: boolean): string {
  if (m === n) return whole ? '' : 'S';
  const k = splitPoint(n);
  return m <= k ? `${subproofShape(m, k, whole)}R` : `${subproofShape(m - k, n - k, false)}L`;
}

const runs = { numRuns: 200 };

describe('inclusion proofs: properties', () => {
  const caseArb = logArb.chain((leaves) =>
    fc
      .integer({ min: 1, max: leaves.length })
      .chain((size) =>
        fc.record({ leaves: fc.constant(leaves), size: fc.constant(size), index: fc.nat(size - 1) }),
      ),
  );

  it('every generated proof verifies against the root of its size', () => {
    fc.assert(
      fc.property(caseArb, ({ leaves, size, index }) => {
        const proof = inclusionProof(leaves, index, size);
        const check = verifyInclusion({
          index,
          size,
          leafHash: at(leaves, index),
          proof,
          root: merkleRoot(leaves, size),
        });
        expect(check).toEqual({ ok: true });
      }),
      runs,
    );
  });

  it('one altered byte in the proof, the leaf hash or the root fails', () => {
    fc.assert(
      fc.property(caseArb, alterationArb, ({ leaves, size, index }, alteration) => {
        const proof = inclusionProof(leaves, index, size);
        const good = { index, size, leafHash: at(leaves, index), proof, root: merkleRoot(leaves, size) };
        if (proof.length > 0)
          expect(verifyInclusion({ ...good, proof: alter(proof, alteration) }).ok).toBe(false);
        expect(verifyInclusion({ ...good, leafHash: alterOne(good.leafHash, alteration) }).ok).toBe(false);
        expect(verifyInclusion({ ...good, root: alterOne(good.root, alteration) }).ok).toBe(false);
      }),
      runs,
    );
  });

  it('a wrong index always fails; a wrong size fails unless it gives the same path shape', () => {
    fc.assert(
      fc.property(
        caseArb,
        fc.nat(200),
        fc.integer({ min: 1, max: 200 }),
        ({ leaves, size, index }, otherIndex, otherSize) => {
          const proof = inclusionProof(leaves, index, size);
          const good = { index, size, leafHash: at(leaves, index), proof, root: merkleRoot(leaves, size) };
          if (otherIndex !== index) expect(verifyInclusion({ ...good, index: otherIndex }).ok).toBe(false);
          if (otherSize !== size) {
            const sameShape = index < otherSize && pathShape(index, otherSize) === pathShape(index, size);
            expect(verifyInclusion({ ...good, size: otherSize }).ok).toBe(sameShape);
          }
        },
      ),
      runs,
    );
  });
});

describe('consistency proofs: properties', () => {
  const caseArb = logArb.chain((leaves) =>
    fc.integer({ min: 1, max: leaves.length }).chain((newSize) =>
      fc.record({
        leaves: fc.constant(leaves),
        newSize: fc.constant(newSize),
        oldSize: fc.integer({ min: 1, max: newSize }),
      }),
    ),
  );
  const heads = (leaves: Uint8Array[], oldSize: number, newSize: number) => ({
    oldSize,
    newSize,
    oldRoot: merkleRoot(leaves, oldSize),
    newRoot: merkleRoot(leaves, newSize),
    proof: consistencyProof(leaves, oldSize, newSize),
  });

  it('every generated proof verifies between the two roots', () => {
    fc.assert(
      fc.property(caseArb, ({ leaves, oldSize, newSize }) => {
        expect(verifyConsistency(heads(leaves, oldSize, newSize))).toEqual({ ok: true });
      }),
      runs,
    );
  });

  it('one altered byte in the proof or either root fails', () => {
    fc.assert(
      fc.property(caseArb, alterationArb, ({ leaves, oldSize, newSize }, alteration) => {
        const good = heads(leaves, oldSize, newSize);
        const { proof } = good;
        if (proof.length > 0)
          expect(verifyConsistency({ ...good, proof: alter(proof, alteration) }).ok).toBe(false);
        expect(verifyConsistency({ ...good, oldRoot: alterOne(good.oldRoot, alteration) }).ok).toBe(false);
        // With equal sizes the roots are compared directly, so the new root is covered there too.
        expect(verifyConsistency({ ...good, newRoot: alterOne(good.newRoot, alteration) }).ok).toBe(false);
      }),
      runs,
    );
  });

  it('a wrong old size always fails; a wrong new size fails unless it gives the same proof shape', () => {
    fc.assert(
      fc.property(
        caseArb,
        fc.nat(200),
        fc.integer({ min: 1, max: 200 }),
        ({ leaves, oldSize, newSize }, otherOld, otherNew) => {
          const good = heads(leaves, oldSize, newSize);
          if (otherOld !== oldSize) expect(verifyConsistency({ ...good, oldSize: otherOld }).ok).toBe(false);
          if (otherNew !== newSize) {
            const sameShape =
              oldSize <= otherNew &&
              subproofShape(oldSize, otherNew, true) === subproofShape(oldSize, newSize, true);
            expect(verifyConsistency({ ...good, newSize: otherNew }).ok).toBe(sameShape);
          }
        },
      ),
      runs,
    );
  });
});
