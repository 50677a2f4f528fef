import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toBase64 } from '../encoding.js';
import { FlotillaError } from '../errors.js';
import { generateSigningKeyPair, keyPairFromSeed } from '../signing.js';
import { readKeyFile, writeKeyFile } from './key-file.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return error instanceof FlotillaError ? error.code : `not a FlotillaError: ${String(error)}`;
  }
  return 'no error';
}

describe('key files', () => {
  it('writes mode 0600 (in a new directory) and reads the same key pair back', () => {
    const path = join(dir, 'nested', 'device.json');
    const keyPair = generateSigningKeyPair();
    writeKeyFile(path, keyPair);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({
      publicKey: toBase64(keyPair.publicKey),
      secretKey: toBase64(keyPair.secretKey),
    });
    expect(readKeyFile(path)).toEqual(keyPair);
  });

  it('replaces an existing world-readable file with a 0600 one', () => {
    const path = join(dir, 'loose.json');
    writeFileSync(path, 'old');
    chmodSync(path, 0o644);
    writeKeyFile(path, keyPairFromSeed(new Uint8Array(32).fill(3)));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readKeyFile(path).publicKey).toEqual(keyPairFromSeed(new Uint8Array(32).fill(3)).publicKey);
  });

  it('reports a missing file as NOT_FOUND', () => {
    expect(codeOf(() => readKeyFile(join(dir, 'absent.json')))).toBe('NOT_FOUND');
  });

  it.each([
    ['not JSON', '{"publicKey":'],
    ['an array', '[]'],
    ['missing secretKey', JSON.stringify({ publicKey: toBase64(new Uint8Array(32)) })],
    [
      'a short secret key',
      JSON.stringify({ publicKey: toBase64(new Uint8Array(32)), secretKey: toBase64(new Uint8Array(32)) }),
    ],
    [
      'a public key from another pair',
      JSON.stringify({
        publicKey: toBase64(keyPairFromSeed(new Uint8Array(32).fill(1)).publicKey),
        secretKey: toBase64(keyPairFromSeed(new Uint8Array(32).fill(2)).secretKey),
      }),
    ],
  ])('refuses a key file holding %s with CORRUPT_FILE', (_name, contents) => {
    const path = join(dir, 'corrupt.json');
    writeFileSync(path, contents, { mode: 0o600 });
    expect(codeOf(() => readKeyFile(path))).toBe('CORRUPT_FILE');
  });
});
