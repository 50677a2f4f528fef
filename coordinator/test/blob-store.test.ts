import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { FlotillaError, sha256Hex } from '@flotilla/protocol';
import { openBlobStore, type BlobStore } from '../src/shared/blob-store/index.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';

const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
const dir = mkdtempSync(join(tmpdir(), 'flotilla-blobs-'));
afterAll(() => {
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

/** Splits bytes into chunks delivered one event-loop turn apart, like a socket. */
async function* chunks(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) {
    await new Promise((resolve) => setImmediate(resolve));
    yield bytes.subarray(i, i + size);
  }
}

const stores: Array<[string, () => BlobStore]> = [
  ['local', () => openBlobStore({ kind: 'local', dir })],
  ['redis', () => openBlobStore({ kind: 'redis', redis, prefix: uniquePrefix('blobs') })],
];

describe.each(stores)('%s blob store', (_name, make) => {
  const store = make();
  const bytes = new Uint8Array(randomBytes(10_000));
  const digest = sha256Hex(bytes);

  it('streams, hashes and serves bytes and ranges', async () => {
    expect(await store.has(digest)).toBe(false);
    expect(await store.putStream(digest, chunks(bytes, 777), { maxBytes: 10_000 })).toEqual({
      bytes: 10_000,
    });
    expect(await store.size(digest)).toBe(10_000);
    expect(await store.get(digest)).toEqual(bytes);
    expect(await store.getRange(digest, 9_990, 9_999)).toEqual(bytes.subarray(9_990));
  });

  it('refuses a digest mismatch and an oversized stream, storing nothing', async () => {
    const other = new Uint8Array(randomBytes(100));
    const wrong = sha256Hex(new Uint8Array([1]));
    await expect(store.putStream(wrong, chunks(other, 10), { maxBytes: 1000 })).rejects.toSatisfy((e) =>
      FlotillaError.is(e, 'DIGEST_MISMATCH'),
    );
    await expect(store.put(wrong, other)).rejects.toSatisfy((e) => FlotillaError.is(e, 'DIGEST_MISMATCH'));
    await expect(store.putStream(sha256Hex(other), chunks(other, 10), { maxBytes: 99 })).rejects.toSatisfy(
      (e) => FlotillaError.is(e, 'BLOB_TOO_LARGE'),
    );
    expect(await store.has(wrong)).toBe(false);
    expect(await store.has(sha256Hex(other))).toBe(false);
    expect(await store.get(sha256Hex(other))).toBeNull();
  });
});
