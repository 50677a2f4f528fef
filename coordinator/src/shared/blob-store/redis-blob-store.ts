import type { Redis } from 'ioredis';
import { FlotillaError, sha256Hex } from '@flotilla/protocol';
import { redisKeys, type RedisKeys } from '../keys.js';
import type { BlobStore } from './types.js';
import { assertDigest, collectVerified } from './hashing.js';

/** Options of the Redis blob store. */
export interface RedisBlobStoreOptions {
  redis: Redis;
  /** Key prefix (default `flotilla`); blobs live under `${prefix}:blob:<digest>`. */
  prefix?: string;
}

/** Blobs as Redis strings, so several machines can share one store without a shared disk. */
export class RedisBlobStore implements BlobStore {
  private readonly redis: Redis;
  private readonly keys: RedisKeys;

  constructor(options: RedisBlobStoreOptions) {
    this.redis = options.redis;
    this.keys = redisKeys(options.prefix);
  }

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

  async getRange(digest: string, start: number, endInclusive: number): Promise<Uint8Array | null> {
    const key = this.key(digest);
    if ((await this.redis.exists(key)) !== 1) return null;
    return new Uint8Array(await this.redis.getrangeBuffer(key, start, endInclusive));
  }

  async put(digest: string, bytes: Uint8Array): Promise<void> {
    const actual = sha256Hex(bytes);
    if (actual !== digest)
      throw new FlotillaError('DIGEST_MISMATCH', `blob hashes to ${actual}, not ${digest}`);
    await this.redis.set(this.key(digest), Buffer.from(bytes));
  }

  async putStream(
    digest: string,
    source: AsyncIterable<Uint8Array>,
    options: { maxBytes: number },
  ): Promise<{ bytes: number }> {
    const key = this.key(digest);
    const { bytes, chunks } = await collectVerified(digest, source, options.maxBytes);
    await this.redis.set(key, Buffer.concat(chunks));
    return { bytes };
  }
}
