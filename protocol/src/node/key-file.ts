import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import nacl from 'tweetnacl';
import { z } from 'zod';
import { fromBase64, toBase64 } from '../encoding.js';
import { FlotillaError } from '../errors.js';
import { PublicKeySchema } from '../messages/primitives.js';
import type { SigningKeyPair } from '../signing.js';

/** Key files hold a secret: readable and writable by their owner only. */
export const KEY_FILE_MODE = 0o600;

/** A key file: tweetnacl's key pair in base64 (32-byte public key, 64-byte secret key = seed || public). */
export const KeyFileSchema = z.object({
  publicKey: PublicKeySchema,
  secretKey: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'expected a base64 64-byte ed25519 secret key'),
});
export type KeyFile = z.infer<typeof KeyFileSchema>;

/**
 * Writes `keyPair` to `path` as JSON with mode 0600, creating the directory (0700) if needed. The
 * file is written beside its target and renamed over it, so a crash never leaves half a key, and
 * an existing file with looser permissions is replaced by one with 0600.
 */
export function writeKeyFile(path: string, keyPair: SigningKeyPair): void {
  const contents: KeyFile = KeyFileSchema.parse({
    publicKey: toBase64(keyPair.publicKey),
    secretKey: toBase64(keyPair.secretKey),
  });
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(temporary, `${JSON.stringify(contents, null, 2)}\n`, { mode: KEY_FILE_MODE, flag: 'w' });
  // The umask cannot widen 0600, but a leftover temporary file could have other bits: set them.
  chmodSync(temporary, KEY_FILE_MODE);
  renameSync(temporary, path);
}

/**
 * Reads a key file written by `writeKeyFile`. Throws `NOT_FOUND` when it does not exist and
 * `CORRUPT_FILE` when it is not JSON, does not match the schema, or its public key is not the one
 * its secret key derives.
 */
export function readKeyFile(path: string): SigningKeyPair {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') {
      throw new FlotillaError('NOT_FOUND', `key file ${path} does not exist`);
    }
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new FlotillaError('CORRUPT_FILE', `key file ${path} is not valid JSON`);
  }
  const parsed = KeyFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FlotillaError(
      'CORRUPT_FILE',
      `key file ${path} is invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? ''}`,
    );
  }
  const publicKey = fromBase64(parsed.data.publicKey);
  const secretKey = fromBase64(parsed.data.secretKey);
  const derived = nacl.sign.keyPair.fromSeed(secretKey.subarray(0, 32));
  if (!nacl.verify(derived.publicKey, publicKey) || !nacl.verify(derived.secretKey, secretKey)) {
    throw new FlotillaError('CORRUPT_FILE', `key file ${path}: the public key does not match the secret key`);
  }
  return { publicKey, secretKey };
}
