import { createHmac, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FlotillaError } from '@flotilla/protocol';

/** Bytes of HMAC output kept in a pseudonym (16 bytes = 32 hex characters). */
const PSEUDONYM_BYTES = 16;
const SECRET_BYTES = 32;

/**
 * Keyed pseudonym of a device for the round log: `dev_` + hex of the first 16 bytes of
 * HMAC-SHA-256(secret, deviceId). Stable under one secret (an auditor can follow a device across
 * rounds), unlinkable to the id without the secret, which auditors do not need.
 */
export function pseudonymizeDevice(secret: Uint8Array, deviceId: string): string {
  if (secret.length < 16)
    throw new FlotillaError('BAD_REQUEST', 'pseudonym secret must be at least 16 bytes');
  const mac = createHmac('sha256', secret).update(deviceId, 'utf8').digest();
  return `dev_${mac.subarray(0, PSEUDONYM_BYTES).toString('hex')}`;
}

/** Path of the pseudonym secret under a state directory. */
export function pseudonymSecretPath(stateDir: string): string {
  return join(stateDir, 'keys', 'pseudonym.secret');
}

/**
 * Reads `keys/pseudonym.secret` (64 hex characters) under the state directory, creating it
 * (mode 0600) on first use. Losing it only breaks linking of new pseudonyms to old ones.
 */
export async function loadOrCreatePseudonymSecret(stateDir: string): Promise<Uint8Array> {
  const path = pseudonymSecretPath(stateDir);
  try {
    const text = (await readFile(path, 'utf8')).trim();
    if (!/^[0-9a-f]{64}$/.test(text))
      throw new FlotillaError('CORRUPT_FILE', `${path} is not 32 bytes of hex`);
    return new Uint8Array(Buffer.from(text, 'hex'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const secret = randomBytes(SECRET_BYTES);
  try {
    // 'wx': if another process created it meanwhile, use theirs.
    await writeFile(path, `${secret.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreatePseudonymSecret(stateDir);
    throw error;
  }
  await chmod(path, 0o600);
  return new Uint8Array(secret);
}
