import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { SIGNING_DOMAINS, domainDigest, setSha256, sha256Hex, sha256Name, utf8 } from '../src/index.js';
import { installNativeSha256, nativeSha256 } from '../src/node/index.js';

describe('SHA-256 implementations', () => {
  afterAll(() => setSha256('@noble/hashes', sha256));

  it('node:crypto gives the FIPS 180-2 digests of "abc" and of the 448-bit message', () => {
    expect(Buffer.from(nativeSha256(utf8('abc'))).toString('hex')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(
      Buffer.from(nativeSha256(utf8('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))).toString(
        'hex',
      ),
    ).toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });

  it('installNativeSha256 switches sha256Hex and domainDigest without changing a digest', () => {
    const samples = fc.sample(fc.uint8Array({ maxLength: 5000 }), 50);
    const before = samples.map(sha256Hex);
    const signed = domainDigest(SIGNING_DOMAINS.update, { a: 1 });
    installNativeSha256();
    expect(sha256Name()).toBe('node:crypto');
    expect(samples.map(sha256Hex)).toEqual(before);
    expect(domainDigest(SIGNING_DOMAINS.update, { a: 1 })).toEqual(signed);
  });
});
