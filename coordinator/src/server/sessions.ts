import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import { redisKeys, type RedisKeys } from '../shared/keys.js';

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Bearer tokens handed out after a successful challenge; stored hashed with a TTL. */
export class SessionStore {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    /** Session lifetime in ms. */
    private readonly ttlMs: number,
  ) {
    this.keys = redisKeys(prefix);
  }

  async create(deviceId: string): Promise<{ sessionToken: string; expiresAt: number }> {
    const sessionToken = randomBytes(32).toString('hex');
    await this.redis.set(this.keys.session(hashToken(sessionToken)), deviceId, 'PX', this.ttlMs);
    return { sessionToken, expiresAt: Date.now() + this.ttlMs };
  }

  /** Device id for a live token, else null. */
  async resolve(token: string): Promise<string | null> {
    if (token.length < 32 || token.length > 128) return null;
    return this.redis.get(this.keys.session(hashToken(token)));
  }
}

/** Constant-time comparison of an offered operator token with the configured one. */
export function operatorTokenMatches(offered: string, expected: string | undefined): boolean {
  if (!expected) return false;
  const a = createHash('sha256').update(offered).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
