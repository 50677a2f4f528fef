// docs/auditing.md ("Merkle proofs") walks an inclusion proof by hand. This test reads
// the numbers from the doc, redoes every step with node:crypto (not Flotilla's hashing), and
// checks that the library produces and accepts the same proof.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../src/encoding.js';
import { inclusionProof, merkleLeafHash, merkleRoot, verifyInclusion } from '../src/merkle/index.js';
import { auditingDocSample } from './support/index.js';

const sha256 = (...parts: string[]): string => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(fromHex(part));
  return hash.digest('hex');
};

describe('docs/auditing.md: the 3-leaf inclusion proof worked by hand', () => {
  const { names, value } = auditingDocSample('## Merkle proofs');

  it('every step is what SHA-256 gives', () => {
    expect(names).toEqual(['h0', 'h1', 'h2', 'n01', 'root']);
    expect(value('h0')).toBe(sha256('00'));
    expect(value('h1')).toBe(sha256('00', '00'));
    expect(value('h2')).toBe(sha256('00', '10'));
    expect(value('n01')).toBe(sha256('01', value('h0'), value('h1')));
    expect(value('root')).toBe(sha256('01', value('n01'), value('h2')));
  });

  it('is the proof the library makes for leaf 1 of 3, and the library accepts it', () => {
    const leaves = ['', '00', '10'].map((entry) => merkleLeafHash(fromHex(entry)));
    expect(toHex(merkleRoot(leaves))).toBe(value('root'));
    expect(inclusionProof(leaves, 1, 3).map(toHex)).toEqual([value('h0'), value('h2')]);
    const check = {
      index: 1,
      leafHash: fromHex(value('h1')),
      proof: [fromHex(value('h0')), fromHex(value('h2'))],
      root: fromHex(value('root')),
    };
    expect(verifyInclusion({ ...check, size: 3 })).toEqual({ ok: true });
    // The doc's warning: size 4 has the same path shape for leaf 1, size 2 does not.
    expect(verifyInclusion({ ...check, size: 4 }).ok).toBe(true);
    expect(verifyInclusion({ ...check, size: 2 }).ok).toBe(false);
  });
});
