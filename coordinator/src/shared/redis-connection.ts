import type { RedisOptions } from 'ioredis';

/**
 * Flotilla names a Redis server with one URL string: `redis://host:port/db` for TCP, or
 * `unix:///absolute/path/redis.sock` for a unix socket (what the embedded server uses).
 * BullMQ needs `maxRetriesPerRequest: null` on the connections it blocks on.
 */
export function redisOptionsFromUrl(url: string): RedisOptions {
  if (url.startsWith('unix://')) {
    return { path: url.slice('unix://'.length), maxRetriesPerRequest: null };
  }
  const parsed = new URL(url);
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error(`REDIS_URL must start with redis://, rediss:// or unix:// (got ${parsed.protocol})`);
  }
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
  return {
    host: parsed.hostname,
    port: parsed.port ? Number(parsed.port) : 6379,
    db,
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}
