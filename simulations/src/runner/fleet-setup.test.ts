import { describe, expect, it } from 'vitest';
import { keyPairFromSeed, sha256Hex } from '@flotilla/protocol';
import { createRng } from '../rng/random.js';
import { deviceKeySeed, publicKeyFromSeed } from './device-keys.js';
import { enrollDevices } from './fleet-setup.js';
import { SharedBlobStore, VirtualDeviceCache, emptyDormantCache } from './virtual-device-cache.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

describe('device keys', () => {
  it('derive the RFC 8032 public key of a seed (test 1), as tweetnacl does', () => {
    const seed = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
    expect(hex(publicKeyFromSeed(seed))).toBe(
      'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    );
    const drawn = deviceKeySeed(createRng(4), 17);
    expect(hex(publicKeyFromSeed(drawn))).toBe(hex(keyPairFromSeed(drawn).publicKey));
  });
});

describe('enrollDevices', () => {
  it('enrols every device once, with the public key of its seed, reporting progress', async () => {
    const specs = Array.from({ length: 600 }, (_, i) => ({
      deviceId: `device-${i}`,
      seedKey: Buffer.from(deviceKeySeed(createRng(1), i)).toString('base64'),
      trainIndices: [],
      holdoutIndices: [],
      byzantine: false,
      straggler: false,
      seed: i,
    }));
    const enrolled = new Map<string, string>();
    const progress: number[] = [];
    await enrollDevices(
      {
        registerDevice: async ({ deviceId, publicKey }) => {
          await new Promise((r) => setTimeout(r, 1));
          if (enrolled.has(deviceId)) throw new Error(`twice: ${deviceId}`);
          enrolled.set(deviceId, publicKey);
          return { deviceId, publicKey, status: 'active', enrolledAt: 0, via: 'operator' };
        },
      },
      specs,
      (done) => progress.push(done),
    );
    expect(enrolled.size).toBe(600);
    const seed = deviceKeySeed(createRng(1), 599);
    expect(enrolled.get('device-599')).toBe(Buffer.from(keyPairFromSeed(seed).publicKey).toString('base64'));
    expect(progress.at(-1)).toBe(600);
  });
});

describe('VirtualDeviceCache', () => {
  it('shares bytes across devices but shows each device only what it stored', async () => {
    const shared = new SharedBlobStore();
    const first = emptyDormantCache();
    const a = new VirtualDeviceCache(shared, first);
    const b = new VirtualDeviceCache(shared, emptyDormantCache());
    const bytes = new TextEncoder().encode('base model');
    const digest = sha256Hex(bytes);
    await a.put(digest, bytes);
    expect(await a.get(digest)).toEqual(bytes);
    // Device b never downloaded it: it must fetch (and count) it like a real device.
    expect(await b.has(digest)).toBe(false);
    expect(await b.get(digest)).toBeNull();
    await b.put(digest, bytes);
    expect(shared.bytes).toBe(bytes.byteLength);
    await a.writeRecord('adapter-task.json', '{"v":3}');
    // A device brought online again from its dormant state finds its records and blobs.
    const again = new VirtualDeviceCache(shared, first);
    expect(await again.readRecord('adapter-task.json')).toBe('{"v":3}');
    expect(await again.get(digest)).toEqual(bytes);
    expect(await b.readRecord('adapter-task.json')).toBeNull();
  });

  it('checks digests like any blob cache', async () => {
    const cache = new VirtualDeviceCache(new SharedBlobStore(), emptyDormantCache());
    await expect(cache.put('0'.repeat(64), new Uint8Array([1]))).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
    });
  });
});
