import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { keyPairFromSeed, toBase64 } from '@flotilla/protocol';
import { FileKeyStore } from '../src/identity/file-key-store.js';
import { MemoryKeyStore, loadOrCreateDeviceKeys } from '../src/identity/key-store.js';

describe('device key stores', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  it('FileKeyStore creates a key once, keeps it at mode 0600 and pins the coordinator key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-keys-'));
    dirs.push(dir);
    const store = new FileKeyStore({ dir: join(dir, 'device') });
    expect(await store.loadDeviceKeys()).toBeNull();
    expect(await store.loadCoordinatorKey()).toBeNull();
    const created = await loadOrCreateDeviceKeys(store);
    const again = await loadOrCreateDeviceKeys(new FileKeyStore({ dir: join(dir, 'device') }));
    expect(toBase64(again.secretKey)).toBe(toBase64(created.secretKey));
    expect((await stat(store.deviceKeyPath)).mode & 0o777).toBe(0o600);
    const coordinatorKey = toBase64(keyPairFromSeed(new Uint8Array(32).fill(4)).publicKey);
    await store.saveCoordinatorKey(coordinatorKey);
    expect(await new FileKeyStore({ dir: join(dir, 'device') }).loadCoordinatorKey()).toBe(coordinatorKey);
    await writeFile(store.coordinatorKeyPath, 'not a key\n');
    await expect(store.loadCoordinatorKey()).rejects.toMatchObject({ code: 'CORRUPT_FILE' });
  });

  it('MemoryKeyStore keeps copies, not the caller buffers', async () => {
    const keys = keyPairFromSeed(new Uint8Array(32).fill(5));
    const store = new MemoryKeyStore();
    await store.saveDeviceKeys(keys);
    keys.secretKey.fill(0);
    expect((await store.loadDeviceKeys())?.secretKey.some((b) => b !== 0)).toBe(true);
  });
});
