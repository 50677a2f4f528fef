import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { FlotillaError, sha256Hex } from '@flotilla/protocol';
import {
  BLOB_READ_CHUNK_BYTES,
  ReadArena,
  SYNC_READ_SLICE_BYTES,
  openBlobStore,
  type BlobStore,
} from '../src/shared/blob-store/index.js';
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
      stored: true,
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
  it('hashes, caps and answers a body sent for a digest it already holds, without rewriting it', async () => {
    const held = new Uint8Array(randomBytes(3_000));
    const heldDigest = sha256Hex(held);
    await store.put(heldDigest, held);
    expect(await store.putStream(heldDigest, chunks(held, 500), { maxBytes: 3_000 })).toEqual({
      bytes: 3_000,
      stored: false,
    });
    const impostor = new Uint8Array(randomBytes(3_000));
    await expect(store.putStream(heldDigest, chunks(impostor, 500), { maxBytes: 3_000 })).rejects.toSatisfy(
      (e) => FlotillaError.is(e, 'DIGEST_MISMATCH'),
    );
    await expect(
      store.putStream(heldDigest, chunks(new Uint8Array(5_000), 500), { maxBytes: 3_000 }),
    ).rejects.toSatisfy((e) => FlotillaError.is(e, 'BLOB_TOO_LARGE'));
    expect(await store.get(heldDigest)).toEqual(held);
  });

  it('reads a blob and ranges of it in bounded chunks', async () => {
    const big = new Uint8Array(randomBytes(BLOB_READ_CHUNK_BYTES * 2 + 12_345));
    const bigDigest = sha256Hex(big);
    await store.putStream(bigDigest, chunks(big, 64 * 1024), { maxBytes: big.length });
    const whole = await store.openRead(bigDigest);
    const sizes: number[] = [];
    const parts: Uint8Array[] = [];
    for await (const chunk of whole?.chunks ?? []) {
      sizes.push(chunk.length);
      parts.push(chunk);
    }
    expect(whole?.size).toBe(big.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(BLOB_READ_CHUNK_BYTES);
    // Buffer.equals: deep equality over half a million elements is slow in the matcher.
    expect(Buffer.concat(parts).equals(big)).toBe(true);
    const start = BLOB_READ_CHUNK_BYTES - 10;
    const end = BLOB_READ_CHUNK_BYTES * 2 + 5;
    const range = await store.getRange(bigDigest, start, end);
    expect(Buffer.from(range ?? []).equals(big.subarray(start, end + 1))).toBe(true);
    expect(await store.openRead(sha256Hex(new Uint8Array([9, 9])))).toBeNull();
  });

  it('reads several blobs at once, in the order asked, with null for one it does not hold', async () => {
    const a = new Uint8Array(randomBytes(1_000));
    const b = new Uint8Array(randomBytes(2_000));
    await store.put(sha256Hex(a), a);
    await store.put(sha256Hex(b), b);
    const absent = sha256Hex(new Uint8Array([4, 5, 6]));
    expect(await store.getMany([sha256Hex(b), absent, sha256Hex(a), sha256Hex(b)])).toEqual([b, null, a, b]);
    expect(await store.getMany([])).toEqual([]);
    await expect(store.getMany(['not-a-digest'])).rejects.toThrow();
    // Offered read memory, the same bytes come back (the Redis store does not use it).
    const arena = new ReadArena(new SharedArrayBuffer(4_096));
    expect(await store.getMany([sha256Hex(a), absent, sha256Hex(b)], { into: arena })).toEqual([a, null, b]);
  });

  it('lists blobs with their last use and deletes only those unused since a time', async () => {
    const old = new Uint8Array(randomBytes(50));
    const oldDigest = sha256Hex(old);
    await store.put(oldDigest, old);
    const listed = new Map<string, number>();
    for await (const entry of store.list()) listed.set(entry.digest, entry.lastUsedAt);
    const usedAt = listed.get(oldDigest);
    expect(usedAt).toBeDefined();
    expect(Math.abs((usedAt ?? 0) - Date.now())).toBeLessThan(60_000);
    // Used after the cut-off: kept. Then a cut-off after its last use: deleted, once.
    expect(await store.deleteIfUnused(oldDigest, (usedAt ?? 0) - 1)).toBe(false);
    expect(await store.deleteIfUnused(oldDigest, Date.now() + 1_000)).toBe(true);
    expect(await store.has(oldDigest)).toBe(false);
    expect(await store.deleteIfUnused(oldDigest, Date.now() + 1_000)).toBe(false);
    expect(await store.touch(oldDigest)).toBe(false);
  });
});

describe('local blob store files', () => {
  it('lets the event loop run between slices of a large batch read', async () => {
    const store = openBlobStore({ kind: 'local', dir });
    // Three blobs of just over half a slice: the slice is full after two of them.
    const blobs = [1, 2, 3].map(() => new Uint8Array(randomBytes(SYNC_READ_SLICE_BYTES / 2 + 1)));
    for (const blob of blobs) await store.put(sha256Hex(blob), blob);
    const order: string[] = [];
    setImmediate(() => order.push('event loop'));
    const read = await store.getMany(blobs.map((blob) => sha256Hex(blob)));
    order.push('read');
    expect(order).toEqual(['event loop', 'read']);
    expect(read.map((bytes) => sha256Hex(bytes ?? new Uint8Array()))).toEqual(blobs.map((b) => sha256Hex(b)));
    // A small batch is read in one go.
    order.length = 0;
    setImmediate(() => order.push('event loop'));
    await store.getMany([sha256Hex(blobs[0] ?? new Uint8Array())]);
    order.push('read');
    expect(order).toEqual(['read']);
  });

  it('reads a batch into the read memory it is given while that has room, and the rest into buffers of its own', async () => {
    const store = openBlobStore({ kind: 'local', dir });
    const blobs = [100, 3_000, 50, 2_000].map((size) => new Uint8Array(randomBytes(size)));
    for (const blob of blobs) await store.put(sha256Hex(blob), blob);
    const arena = new ReadArena(new SharedArrayBuffer(3_200));
    const read = await store.getMany(
      blobs.map((blob) => sha256Hex(blob)),
      { into: arena },
    );
    expect(read).toEqual(blobs);
    // 100 and 3,000 bytes fit (at 0 and 104), and then 50 (at 3,104); 2,000 do not.
    expect(read.map((bytes) => (bytes?.buffer === arena.buffer ? bytes.byteOffset : 'own'))).toEqual([
      0,
      104,
      3_104,
      'own',
    ]);
  });

  it('writes a blob of many chunks whole, and into a shard directory removed since its last write', async () => {
    const store = openBlobStore({ kind: 'local', dir });
    const first = new Uint8Array(randomBytes(3 * 1024 ** 2));
    const firstDigest = sha256Hex(first);
    // 3 MiB in 64 KiB chunks: several batched writes.
    await store.putStream(firstDigest, chunks(first, 64 * 1024), { maxBytes: first.length });
    expect(sha256Hex((await store.get(firstDigest)) ?? new Uint8Array())).toBe(firstDigest);
    // Another blob of the same shard, after the shard directory was removed by hand.
    let second = new Uint8Array(randomBytes(100));
    while (sha256Hex(second).slice(0, 2) !== firstDigest.slice(0, 2))
      second = new Uint8Array(randomBytes(100));
    rmSync(join(dir, firstDigest.slice(0, 2)), { recursive: true });
    await store.put(sha256Hex(second), second);
    expect(await store.get(sha256Hex(second))).toEqual(second);
  });

  it('closes each upload file once and leaves no temp file, whether the upload is stored or refused', async () => {
    const store = openBlobStore({ kind: 'local', dir });
    const openFiles = () => readdirSync('/proc/self/fd').length;
    const before = openFiles();
    for (let i = 0; i < 20; i++) {
      const body = new Uint8Array(randomBytes(5000 + i));
      await store.putStream(sha256Hex(body), chunks(body, 1000), { maxBytes: body.length });
      // Refused after its bytes were written (a wrong digest), and at its first chunk (over the cap).
      await expect(
        store.putStream(sha256Hex(body.subarray(1)), chunks(body, 1000), { maxBytes: 1e6 }),
      ).rejects.toSatisfy((e) => FlotillaError.is(e, 'DIGEST_MISMATCH'));
      await expect(
        store.putStream(sha256Hex(body.subarray(2)), chunks(body, 1000), { maxBytes: 100 }),
      ).rejects.toSatisfy((e) => FlotillaError.is(e, 'BLOB_TOO_LARGE'));
    }
    expect(openFiles()).toBe(before);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  });
});
