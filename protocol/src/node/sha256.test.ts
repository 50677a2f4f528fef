import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { merkleLeafHash, merkleNodeHash, nobleSha256, setSha256, sha256Bytes, sha256Name } from '../index.js';
import { installNativeSha256, nativeSha256 } from './sha256.js';

describe('nativeSha256', () => {
  afterEach(() => setSha256('@noble/hashes', nobleSha256));

  it('hashes any bytes as @noble/hashes does', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1000 }), (bytes) => {
        expect(nativeSha256(bytes)).toEqual(nobleSha256(bytes));
      }),
    );
  });

  it('once installed, gives the Merkle hashes the same bytes as before', () => {
    const cases = fc.sample(
      fc.tuple(fc.uint8Array({ maxLength: 400 }), fc.uint8Array({ minLength: 32, maxLength: 32 })),
      200,
    );
    const before = cases.map(([entry, node]) => [merkleLeafHash(entry), merkleNodeHash(node, node)]);
    installNativeSha256();
    expect(sha256Name()).toBe('node:crypto');
    expect(sha256Bytes(new Uint8Array(0))).toEqual(nobleSha256(new Uint8Array(0)));
    expect(cases.map(([entry, node]) => [merkleLeafHash(entry), merkleNodeHash(node, node)])).toEqual(before);
  });
});
