import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FlotillaError, PublicKeySchema, type SigningKeyPair } from '@flotilla/protocol';
import { readKeyFile, writeKeyFile } from '@flotilla/protocol/node';
import type { KeyStore } from './key-store.js';

export interface FileKeyStoreOptions {
  /** Directory holding `device-key.json` (mode 0600) and `coordinator-key.pub`. Created if missing. */
  dir: string;
}

/**
 * Node key store: the device key pair in `<dir>/device-key.json` (JSON, base64, mode 0600, written
 * by `writeKeyFile`) and the pinned coordinator public key in `<dir>/coordinator-key.pub`.
 */
export class FileKeyStore implements KeyStore {
  private readonly dir: string;

  constructor(options: FileKeyStoreOptions) {
    this.dir = options.dir;
  }

  get deviceKeyPath(): string {
    return join(this.dir, 'device-key.json');
  }

  get coordinatorKeyPath(): string {
    return join(this.dir, 'coordinator-key.pub');
  }

  loadDeviceKeys(): Promise<SigningKeyPair | null> {
    try {
      return Promise.resolve(readKeyFile(this.deviceKeyPath));
    } catch (error) {
      if (FlotillaError.is(error, 'NOT_FOUND')) return Promise.resolve(null);
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  async saveDeviceKeys(keys: SigningKeyPair): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    writeKeyFile(this.deviceKeyPath, keys);
  }

  async loadCoordinatorKey(): Promise<string | null> {
    let text: string;
    try {
      text = (await readFile(this.coordinatorKeyPath, 'utf8')).trim();
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
    const parsed = PublicKeySchema.safeParse(text);
    if (!parsed.success)
      throw new FlotillaError(
        'CORRUPT_FILE',
        `${this.coordinatorKeyPath} does not hold a base64 ed25519 key`,
      );
    return parsed.data;
  }

  async saveCoordinatorKey(publicKeyB64: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Write then rename, so a crash never leaves a half-written pin behind.
    const tmp = `${this.coordinatorKeyPath}.tmp`;
    await writeFile(tmp, `${PublicKeySchema.parse(publicKeyB64)}\n`, { mode: 0o600 });
    await rename(tmp, this.coordinatorKeyPath);
  }
}

function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 'ENOENT';
}
