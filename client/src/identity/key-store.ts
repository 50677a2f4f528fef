import { generateSigningKeyPair, type SigningKeyPair } from '@flotilla/protocol';

/**
 * Where a device keeps its identity: its ed25519 key pair and the coordinator key it pinned on
 * first use. Every method is async so that the same interface fits a file (Node), IndexedDB
 * (browser) or a hardware-backed store.
 */
export interface KeyStore {
  /** The device key pair, or null when none was stored yet. */
  loadDeviceKeys(): Promise<SigningKeyPair | null>;
  saveDeviceKeys(keys: SigningKeyPair): Promise<void>;
  /** The pinned coordinator public key (base64), or null before the first connection. */
  loadCoordinatorKey(): Promise<string | null>;
  saveCoordinatorKey(publicKeyB64: string): Promise<void>;
}

/** Keeps everything in process memory: for tests and simulations of many virtual devices. */
export class MemoryKeyStore implements KeyStore {
  private keys: SigningKeyPair | null;
  private coordinatorKey: string | null;

  constructor(initial: { keys?: SigningKeyPair; coordinatorKey?: string } = {}) {
    this.keys = initial.keys ?? null;
    this.coordinatorKey = initial.coordinatorKey ?? null;
  }

  loadDeviceKeys(): Promise<SigningKeyPair | null> {
    return Promise.resolve(this.keys);
  }

  saveDeviceKeys(keys: SigningKeyPair): Promise<void> {
    this.keys = { publicKey: keys.publicKey.slice(), secretKey: keys.secretKey.slice() };
    return Promise.resolve();
  }

  loadCoordinatorKey(): Promise<string | null> {
    return Promise.resolve(this.coordinatorKey);
  }

  saveCoordinatorKey(publicKeyB64: string): Promise<void> {
    this.coordinatorKey = publicKeyB64;
    return Promise.resolve();
  }
}

/** Returns the stored device key pair, generating and storing a fresh one the first time. */
export async function loadOrCreateDeviceKeys(store: KeyStore): Promise<SigningKeyPair> {
  const existing = await store.loadDeviceKeys();
  if (existing) return existing;
  const keys = generateSigningKeyPair();
  await store.saveDeviceKeys(keys);
  return keys;
}
