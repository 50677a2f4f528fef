import type { Redis } from 'ioredis';
import type { RedisKeys } from '../shared/keys.js';
import { runScript } from '../shared/redis-script.js';

/** Options of a token bucket: messages per second sustained, and the burst it starts with. */
export interface RateLimitOptions {
  /** Sustained messages per second, default 20. */
  perSecond: number;
  /** Burst size in messages, default 100. */
  burst: number;
}

/**
 * The default bucket: 20 messages/s, burst 100. It applies per device identity across every
 * connection and coordinator process (`IdentityRateLimiter`), and per connection to the messages
 * sent before the challenge is answered (`TokenBucket`).
 */
export const DEFAULT_RATE_LIMIT: RateLimitOptions = { perSecond: 20, burst: 100 };

/** A token bucket in memory; `take()` is false when it is empty. */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();

  constructor(private readonly options: RateLimitOptions) {
    this.tokens = options.burst;
  }

  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(
      this.options.burst,
      this.tokens + ((now - this.last) / 1000) * this.options.perSecond,
    );
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

// One bucket per identity in Redis, refilled on Redis's clock (TIME) so processes on machines
// whose clocks differ share one budget. The key lives as long as an empty bucket takes to refill.
const TAKE = `
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or ms
tokens = math.min(burst, tokens + math.max(0, ms - at) * rate / 1000)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(ms))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return allowed
`;

/**
 * Message budget of one device identity, shared by all its connections on every coordinator
 * process: a device that reconnects, or connects to another process, does not get a fresh burst.
 */
export class IdentityRateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly options: RateLimitOptions,
  ) {}

  /** Takes one token from `deviceId`'s bucket; false when it is empty. */
  async take(deviceId: string): Promise<boolean> {
    const allowed = await runScript(
      this.redis,
      TAKE,
      1,
      this.keys.rateLimit(deviceId),
      String(this.options.perSecond),
      String(this.options.burst),
    );
    return allowed === 1;
  }
}
