import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { fromBase64, keyPairFromSeed, toBase64, type SigningKeyPair } from '@flotilla/protocol';

const KeyFileSchema = z.object({ publicKey: z.string(), secretKey: z.string() });

/**
 * The coordinator's ed25519 key at `<stateDir>/keys/coordinator.json` (JSON `{ publicKey,
 * secretKey }`, base64, mode 0600), created on first use.
 */
export function loadOrCreateCoordinatorKey(stateDir: string): SigningKeyPair {
  const dir = join(stateDir, 'keys');
  const path = join(dir, 'coordinator.json');
  if (existsSync(path)) {
    const parsed = KeyFileSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
    const pair = { publicKey: fromBase64(parsed.publicKey), secretKey: fromBase64(parsed.secretKey) };
    if (pair.publicKey.length !== 32 || pair.secretKey.length !== 64)
      throw new Error(`${path}: malformed key file`);
    return pair;
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pair = keyPairFromSeed(new Uint8Array(randomBytes(32)));
  writeFileSync(
    path,
    JSON.stringify({ publicKey: toBase64(pair.publicKey), secretKey: toBase64(pair.secretKey) }),
    {
      mode: 0o600,
    },
  );
  chmodSync(path, 0o600);
  return pair;
}
