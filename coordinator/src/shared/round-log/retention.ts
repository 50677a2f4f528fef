import type { Redis } from 'ioredis';
import { roundLogKeys } from './keys.js';

/**
 * Digests of delta blobs that must still be kept for auditors (retention not yet expired at
 * `now`, epoch ms). Blob garbage collection consults this; expired entries are dropped.
 */
export async function retainedDeltaDigests(
  redis: Redis,
  prefix: string,
  now: number = Date.now(),
): Promise<string[]> {
  const key = roundLogKeys(prefix).retained;
  await redis.zremrangebyscore(key, '-inf', `(${now}`);
  return redis.zrange(key, 0, -1);
}
