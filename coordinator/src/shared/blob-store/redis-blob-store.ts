import { randomBytes } from 'node:crypto';
import { FlotillaError, sha256Hex } from '@flotilla/protocol';
import {
  BLOB_READ_CHUNK_BYTES,
  type BlobListing,
  type BlobReader,
  type BlobStore,
  type ByteRange,
} from './types.js';
import { assertDigest, clampRange, readAll, streamVerified, verifyAgainstStored } from './hashing.js';
import { RedisStore, type RedisStoreOptions } from '../redis-store.js';
import { runScript } from '../redis-script.js';

/** Options of the Redis blob store: blobs live under `${prefix}:blob:<digest>`. */
export type RedisBlobStoreOptions = RedisStoreOptions;

/** An upload's temp key expires after this long if its process dies mid-upload: 1 h. */
const TEMP_TTL_MS = 3_600_000;

// Moves a verified upload into place unless another upload of the same bytes got there first.
// KEYS: temp, blob, index. ARGV: now, digest. Returns 1 stored, 0 already present.
const COMMIT = `
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DEL', KEYS[1])
  redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('PERSIST', KEYS[2])
else
  redis.call('SET', KEYS[2], '')
end
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
return 1
`;

// KEYS: blob, index. ARGV: now, digest.
const TOUCH = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
return 1
`;

// Deletes the blob unless it was used at or after ARGV[2]. KEYS: blob, index. ARGV: digest, since.
const DELETE_IF_UNUSED = `
local used = redis.call('ZSCORE', KEYS[2], ARGV[1])
if used and tonumber(used) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
`;

/**
 * Blobs as Redis strings, so several machines can share one store without a shared disk. Writes
 * and reads move `BLOB_READ_CHUNK_BYTES` at a time (APPEND to a temp key renamed into place;
 * GETRANGE), so no transfer holds a whole blob in this process.
 */
export class RedisBlobStore extends RedisStore implements BlobStore {
  private legacyIndexed = false;

  private key(digest: string): string {
    assertDigest(digest);
    return this.keys.blob(digest);
  }

  async has(digest: string): Promise<boolean> {
    return (await this.redis.exists(this.key(digest))) === 1;
  }

  async size(digest: string): Promise<number | null> {
    const key = this.key(digest);
    const [exists, len] = await Promise.all([this.redis.exists(key), this.redis.strlen(key)]);
    return exists === 1 ? len : null;
  }

  async get(digest: string): Promise<Uint8Array | null> {
    const value = await this.redis.getBuffer(this.key(digest));
    return value ? new Uint8Array(value) : null;
  }

  async getMany(digests: readonly string[]): Promise<Array<Uint8Array | null>> {
    if (digests.length === 0) return [];
    const values = await this.redis.mgetBuffer(digests.map((d) => this.key(d)));
    return values.map((value) => (value ? new Uint8Array(value) : null));
  }

  async getRange(digest: string, start: number, endInclusive: number): Promise<Uint8Array | null> {
    return readAll(await this.openRead(digest, { start, endInclusive }));
  }

  async openRead(digest: string, range?: ByteRange): Promise<BlobReader | null> {
    const size = await this.size(digest);
    if (size === null) return null;
    const key = this.key(digest);
    const redis = this.redis;
    const { start, endInclusive } = clampRange(size, range);
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let position = start; position <= endInclusive;) {
        const last = Math.min(endInclusive, position + BLOB_READ_CHUNK_BYTES - 1);
        const part = await redis.getrangeBuffer(key, position, last);
        // Deleted (garbage collected) while being read: the transfer fails rather than lie.
        if (part.length !== last - position + 1)
          throw new FlotillaError('BLOB_MISSING', `blob ${digest} was removed while being read`);
        position = last + 1;
        yield new Uint8Array(part);
      }
    }
    return { size, chunks: chunks(), close: () => Promise.resolve() };
  }

  async put(digest: string, bytes: Uint8Array): Promise<void> {
    const actual = sha256Hex(bytes);
    if (actual !== digest)
      throw new FlotillaError('DIGEST_MISMATCH', `blob hashes to ${actual}, not ${digest}`);
    if (await this.touch(digest)) return;
    await this.redis
      .multi()
      .set(this.key(digest), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'NX')
      .zadd(this.keys.blobIndex(), Date.now(), digest)
      .exec();
  }

  async putStream(
    digest: string,
    source: AsyncIterable<Uint8Array>,
    options: { maxBytes: number },
  ): Promise<{ bytes: number; stored: boolean }> {
    const key = this.key(digest);
    if (await this.has(digest)) return verifyAgainstStored(this, digest, source, options.maxBytes);
    const temp = this.keys.blobTemp(digest, randomBytes(6).toString('hex'));
    // Small socket chunks are gathered up to one Redis command's worth before they are sent.
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const data = Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      await this.redis.multi().append(temp, data).pexpire(temp, TEMP_TTL_MS).exec();
    };
    try {
      const bytes = await streamVerified(digest, source, options.maxBytes, async (chunk) => {
        pending.push(Buffer.from(chunk));
        pendingBytes += chunk.length;
        if (pendingBytes >= BLOB_READ_CHUNK_BYTES) await flush();
      });
      await flush();
      const stored = await runScript(
        this.redis,
        COMMIT,
        3,
        temp,
        key,
        this.keys.blobIndex(),
        Date.now(),
        digest,
      );
      return { bytes, stored: stored === 1 };
    } catch (error) {
      await this.redis.del(temp).catch(() => undefined);
      throw error;
    }
  }

  async touch(digest: string): Promise<boolean> {
    const touched = await runScript(
      this.redis,
      TOUCH,
      2,
      this.key(digest),
      this.keys.blobIndex(),
      Date.now(),
      digest,
    );
    return touched === 1;
  }

  async *list(): AsyncIterable<BlobListing> {
    await this.indexLegacyBlobs();
    const index = this.keys.blobIndex();
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.zscan(index, cursor, 'COUNT', 500);
      cursor = next;
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const digest = flat[i] ?? '';
        const lastUsedAt = Number(flat[i + 1]);
        const bytes = await this.size(digest).catch(() => null);
        if (bytes === null) await this.redis.zrem(index, digest);
        else yield { digest, bytes, lastUsedAt };
      }
    } while (cursor !== '0');
  }

  /**
   * Blobs written before the store kept an index have no last-use time: they are indexed as used
   * now (once per process), so garbage collection first waits a whole grace period for them.
   */
  private async indexLegacyBlobs(): Promise<void> {
    if (this.legacyIndexed) return;
    const prefix = this.keys.blob('');
    let cursor = '0';
    do {
      const [next, found] = await this.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      const digests = found.map((k) => k.slice(prefix.length)).filter((d) => /^[0-9a-f]{64}$/.test(d));
      if (digests.length > 0)
        await this.redis.zadd(this.keys.blobIndex(), 'NX', ...digests.flatMap((d) => [Date.now(), d]));
    } while (cursor !== '0');
    this.legacyIndexed = true;
  }

  async deleteIfUnused(digest: string, unusedSince: number): Promise<boolean> {
    const deleted = await runScript(
      this.redis,
      DELETE_IF_UNUSED,
      2,
      this.key(digest),
      this.keys.blobIndex(),
      digest,
      unusedSince,
    );
    return deleted === 1;
  }

  removeStaleTemps(): Promise<number> {
    return Promise.resolve(0);
  }
}
