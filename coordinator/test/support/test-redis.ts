import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { redisOptionsFromUrl } from '../../src/shared/redis-connection.js';
import { testRedisUrl } from '../../../test-support/redis.js';

/**
 * Connections to the test Redis for one test file: each call of the returned function opens one
 * more, and every one is closed after the file's tests (the after hook is registered here).
 * Closing one early in a test is fine.
 */
export function testRedisConnections(): () => Redis {
  const opened: Redis[] = [];
  afterAll(() => {
    for (const redis of opened) redis.disconnect();
  });
  return () => {
    const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
    opened.push(redis);
    return redis;
  };
}
