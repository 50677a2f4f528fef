import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { FlotillaError } from '../errors.js';
import { createSha256Stream, sha256FileHex } from './sha256-file.js';

// FIPS 180-2 examples: SHA-256("abc") and SHA-256("") (also in NIST's SHA examples).
const ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
// FIPS 180-2 appendix B.3: one million repetitions of "a".
const MILLION_A = 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-sha-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sha256FileHex', () => {
  it.each([
    ['abc', 'abc', ABC],
    ['empty', '', EMPTY],
    ['a million a (several read chunks)', 'a'.repeat(1_000_000), MILLION_A],
  ])('hashes the %s file', async (name, contents, digest) => {
    const path = join(dir, `${name.split(' ')[0] ?? 'file'}.bin`);
    writeFileSync(path, contents);
    expect(await sha256FileHex(path)).toBe(digest);
  });

  it('rejects for a missing file', async () => {
    await expect(sha256FileHex(join(dir, 'absent'))).rejects.toThrow();
  });
});

describe('createSha256Stream', () => {
  it('passes the bytes through unchanged and hashes them', async () => {
    const hasher = createSha256Stream();
    const received: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        received.push(chunk);
        callback();
      },
    });
    const chunks = Array.from({ length: 1000 }, () => Buffer.from('a'.repeat(1000)));
    await pipeline(Readable.from(chunks), hasher, sink);
    expect(hasher.digestHex()).toBe(MILLION_A);
    expect(hasher.bytes).toBe(1_000_000);
    expect(Buffer.concat(received).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('refuses to give a digest before the stream ends', () => {
    const hasher = createSha256Stream();
    hasher.write(Buffer.from('abc'));
    expect(() => hasher.digestHex()).toThrow(FlotillaError);
    hasher.destroy();
  });
});
