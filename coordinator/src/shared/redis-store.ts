import type { Redis } from 'ioredis';
import { redisKeys, type RedisKeys } from './keys.js';

/** Options of a store that keeps its records in Redis under a key prefix. */
export interface RedisStoreOptions {
  redis: Redis;
  /** Key prefix, default `flotilla`. */
  prefix?: string;
}

/** The base of the Redis-backed stores: the connection, and the key names under the prefix. */
export abstract class RedisStore {
  protected readonly redis: Redis;
  protected readonly keys: RedisKeys;

  constructor(options: RedisStoreOptions) {
    this.redis = options.redis;
    this.keys = redisKeys(options.prefix);
  }
}
