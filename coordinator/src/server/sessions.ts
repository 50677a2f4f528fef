import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import { FlotillaError } from '@flotilla/protocol';
import { redisKeys, type RedisKeys } from '../shared/keys.js';
import { DEVICE_ACTIVE_LUA } from './device-registry.js';
import { runScript } from '../shared/redis-script.js';

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

// KEYS: device record, session key, the device's session index. ARGV: device id, ttl ms, token hash.
// Refuses a device that is not active in the same step as the write, so a session opened while
// the device is being revoked is either refused or listed in the index that revocation empties.
const CREATE = `${DEVICE_ACTIVE_LUA}
if not deviceActive(KEYS[1]) then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 1
`;

// KEYS: session key. ARGV: device key prefix. The token's device id, if the token is live and its
// device is still active.
const RESOLVE = `${DEVICE_ACTIVE_LUA}
local id = redis.call('GET', KEYS[1])
if not id or not deviceActive(ARGV[1] .. id) then return false end
return id
`;

/** Bearer tokens handed out after a successful challenge; stored hashed with a TTL, indexed per device. */
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

  /** A new token for `deviceId`; REVOKED_DEVICE when the device is not (or no longer) active. */
  async create(deviceId: string): Promise<{ sessionToken: string; expiresAt: number }> {
    const sessionToken = randomBytes(32).toString('hex');
    const hash = hashToken(sessionToken);
    const created = await runScript(
      this.redis,
      CREATE,
      3,
      this.keys.device(deviceId),
      this.keys.session(hash),
      this.keys.deviceSessions(deviceId),
      deviceId,
      String(this.ttlMs),
      hash,
    );
    if (created !== 1) throw new FlotillaError('REVOKED_DEVICE', 'device enrollment was revoked');
    return { sessionToken, expiresAt: Date.now() + this.ttlMs };
  }

  /** The Redis key of `token`'s session; null for a token no session can have (its length). */
  keyOf(token: string): string | null {
    if (token.length < 32 || token.length > 128) return null;
    return this.keys.session(hashToken(token));
  }

  /** Device id for a live token of an active device, else null. */
  async resolve(token: string): Promise<string | null> {
    const key = this.keyOf(token);
    if (key === null) return null;
    const id = await runScript(this.redis, RESOLVE, 1, key, this.keys.device(''));
    return typeof id === 'string' ? id : null;
  }

  /** Ends every session token of `deviceId` (revocation); returns how many were live. */
  async revokeAll(deviceId: string): Promise<number> {
    const hashes = await this.redis.smembers(this.keys.deviceSessions(deviceId));
    const multi = this.redis.multi();
    for (const hash of hashes) multi.del(this.keys.session(hash));
    multi.del(this.keys.deviceSessions(deviceId));
    const results = (await multi.exec()) ?? [];
    return results.slice(0, hashes.length).filter(([, n]) => n === 1).length;
  }
}

/** Constant-time comparison of an offered operator token with the configured one. */
export function operatorTokenMatches(offered: string, expected: string | undefined): boolean {
  if (!expected) return false;
  const a = createHash('sha256').update(offered).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
