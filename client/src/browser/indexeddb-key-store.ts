import { z } from 'zod';
import { FlotillaError, PublicKeySchema, type SigningKeyPair } from '@flotilla/protocol';
import type { KeyStore } from '../identity/key-store.js';
import { idbGet, idbPut, openDatabase, type IdbHandle } from './indexeddb.js';

export interface IndexedDbKeyStoreOptions {
  /** Database name; one per device identity on an origin. Default `flotilla-device`. */
  database?: string;
  /** IndexedDB factory (tests may pass another). Default `globalThis.indexedDB`. */
  factory?: IDBFactory;
}

const STORE = 'identity';
const DEVICE_KEYS = 'device-keys';
const COORDINATOR_KEY = 'coordinator-key';

// Stored as raw bytes (structured clone keeps Uint8Array): 32-byte public, 64-byte secret key.
const StoredKeysSchema = z.object({
  publicKey: z.instanceof(Uint8Array).refine((b) => b.length === 32, 'public key must be 32 bytes'),
  secretKey: z.instanceof(Uint8Array).refine((b) => b.length === 64, 'secret key must be 64 bytes'),
});

/**
 * Browser key store: the device's ed25519 key pair and the pinned coordinator key in IndexedDB
 * (database `flotilla-device`, object store `identity`). The secret key is readable by scripts of
 * the page's origin, like any web storage: serve the device page from an origin you trust.
 */
export class IndexedDbKeyStore implements KeyStore {
  private handle: Promise<IdbHandle> | null = null;

  constructor(private readonly options: IndexedDbKeyStoreOptions = {}) {}

  private open(): Promise<IdbHandle> {
    this.handle ??= openDatabase(this.options.database ?? 'flotilla-device', [STORE], this.options.factory);
    return this.handle;
  }

  async loadDeviceKeys(): Promise<SigningKeyPair | null> {
    const raw = await idbGet(await this.open(), STORE, DEVICE_KEYS);
    if (raw === undefined) return null;
    const parsed = StoredKeysSchema.safeParse(raw);
    if (!parsed.success) throw new FlotillaError('CORRUPT_FILE', 'the stored device key pair is malformed');
    return { publicKey: parsed.data.publicKey, secretKey: parsed.data.secretKey };
  }

  async saveDeviceKeys(keys: SigningKeyPair): Promise<void> {
    const value = StoredKeysSchema.parse({
      publicKey: keys.publicKey.slice(),
      secretKey: keys.secretKey.slice(),
    });
    await idbPut(await this.open(), STORE, DEVICE_KEYS, value);
  }

  async loadCoordinatorKey(): Promise<string | null> {
    const raw = await idbGet(await this.open(), STORE, COORDINATOR_KEY);
    if (raw === undefined) return null;
    const parsed = PublicKeySchema.safeParse(raw);
    if (!parsed.success) throw new FlotillaError('CORRUPT_FILE', 'the pinned coordinator key is malformed');
    return parsed.data;
  }

  async saveCoordinatorKey(publicKeyB64: string): Promise<void> {
    await idbPut(await this.open(), STORE, COORDINATOR_KEY, PublicKeySchema.parse(publicKeyB64));
  }

  /** A small named value next to the keys (e.g. which coordinator this device enrolled with). */
  async readNote(name: string): Promise<string | null> {
    const raw = await idbGet(await this.open(), STORE, `note:${name}`);
    return typeof raw === 'string' ? raw : null;
  }

  async writeNote(name: string, value: string): Promise<void> {
    await idbPut(await this.open(), STORE, `note:${name}`, value);
  }

  /** Closes the database connection (a later call reopens it). */
  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    if (handle) (await handle).close();
  }
}
