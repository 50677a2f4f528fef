import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { RedisKeys } from '../shared/keys.js';
import type { RoundFence } from './round-store.js';
import { runScript } from '../shared/redis-script.js';

/** Default lease length in ms: how long a dead driver blocks a takeover. */
export const DEFAULT_LEASE_TTL_MS = 10_000;

// Takes the lease only when nobody holds it (or it still carries ARGV[3], a holder known to be
// dead); every acquisition gets the next fencing token.
const ACQUIRE = `
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[3] then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
redis.call('SET', KEYS[3], string.gsub(ARGV[2], '{token}', tostring(token)), 'PX', ARGV[1])
return token
`;

const HolderSchema = z.object({ token: z.number(), host: z.string(), pid: z.number().int() });

/** True when `pid` is not a running process on this host. */
function isDeadPid(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

// Extends the lease only while it still carries our token.
const RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`;

const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`;

/**
 * What a follower asks of the driver: look at a round because a device checked in (`select`) or
 * answered (`response`) on the follower's sockets. New tasks need none: the driver hears the
 * tasks channel.
 */
export const DriverNudgeSchema = z.object({
  kind: z.enum(['select', 'response']),
  roundId: z.string().min(1),
});
export type DriverNudge = z.infer<typeof DriverNudgeSchema>;

export interface RoundLeaseOptions {
  redis: Redis;
  keys: RedisKeys;
  logger: Logger;
  /** Lease length in ms (renewed every ttl/3 while alive). Default 10_000. */
  ttlMs?: number;
  /** Runs after each acquisition, with the new fencing token (e.g. resume the rounds in flight). */
  onAcquired(token: number): Promise<void>;
  /** Runs when the lease is lost (renewal refused or late): stop acting as the driver. */
  onLost(): void;
}

/**
 * The round-driver lease: exactly one coordinator process drives the round state machines at a
 * time. `SET lock token NX PX ttl` with `token = INCR fence`; renewed while the holder is alive;
 * taken over by another process when it expires. The token fences the round store's writes (see
 * `RoundFence`), so a holder that stalled past its lease cannot write after a takeover.
 */
export class RoundLease {
  private tokenValue: number | null = null;
  /** Local epoch ms past which we stop trusting our lease without a renewal. */
  private validUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private stopped = false;
  readonly ttlMs: number;

  constructor(private readonly options: RoundLeaseOptions) {
    this.ttlMs = options.ttlMs ?? DEFAULT_LEASE_TTL_MS;
  }

  /** True while this process holds an unexpired lease. */
  holds(): boolean {
    return this.tokenValue !== null && Date.now() < this.validUntil;
  }

  /** The current fencing token, or null. */
  get token(): number | null {
    return this.holds() ? this.tokenValue : null;
  }

  /** The fence the round store checks on every state-machine write. */
  fence(onFenced?: RoundFence['onFenced']): RoundFence {
    return {
      lockKey: this.options.keys.driverLock(),
      token: () => (this.holds() && this.tokenValue !== null ? String(this.tokenValue) : ''),
      ...(onFenced ? { onFenced } : {}),
    };
  }

  /** Tries once at once (so a lone coordinator drives from its first moment), then keeps trying. */
  async start(): Promise<void> {
    await this.tick();
    if (this.stopped) return;
    this.timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.ttlMs / 3)));
  }

  /** Stops renewing and releases the lease if held, so a successor need not wait for expiry. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const token = this.tokenValue;
    this.tokenValue = null;
    if (token !== null)
      await runScript(this.options.redis, RELEASE, 1, this.options.keys.driverLock(), String(token)).catch(
        () => undefined,
      );
  }

  /** Publishes a nudge for whichever process drives. */
  async nudge(nudge: DriverNudge): Promise<void> {
    await this.options.redis.publish(this.options.keys.driverNudges(), JSON.stringify(nudge));
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      if (this.tokenValue === null) await this.tryAcquire();
      else await this.renew(this.tokenValue);
    } catch (error) {
      this.options.logger.warn({ err: error }, 'round-driver lease check failed');
      if (this.tokenValue !== null && Date.now() >= this.validUntil) this.lose('renewal failed');
    } finally {
      this.ticking = false;
    }
  }

  private async tryAcquire(): Promise<void> {
    const sentAt = Date.now();
    const { keys, redis } = this.options;
    const holder = `{"token":{token},"host":${JSON.stringify(hostname())},"pid":${process.pid}}`;
    const token = Number(
      await runScript(
        redis,
        ACQUIRE,
        3,
        keys.driverLock(),
        keys.driverFence(),
        keys.driverHolder(),
        String(this.ttlMs),
        holder,
        await this.deadHolderToken(),
      ),
    );
    if (!(token > 0) || this.stopped) return;
    this.tokenValue = token;
    // Measured from before the request: the lease may have started any time after sentAt.
    this.validUntil = sentAt + this.ttlMs;
    this.options.logger.info({ token }, 'round-driver lease acquired');
    try {
      await this.options.onAcquired(token);
    } catch (error) {
      this.options.logger.error({ err: error, token }, 'starting the round driver failed');
    }
  }

  /**
   * The token of a holder that is a dead process on this host (a SIGKILLed coordinator being
   * restarted), so the restart need not wait out the lease; '' otherwise. The ACQUIRE script
   * re-checks that the lock still carries that token.
   */
  private async deadHolderToken(): Promise<string> {
    const raw = await this.options.redis.get(this.options.keys.driverHolder());
    if (raw === null) return '';
    let parsed;
    try {
      parsed = HolderSchema.safeParse(JSON.parse(raw));
    } catch {
      return '';
    }
    if (!parsed.success) return '';
    const { host, pid, token } = parsed.data;
    if (host !== hostname() || pid === process.pid || !isDeadPid(pid)) return '';
    return String(token);
  }

  private async renew(token: number): Promise<void> {
    const sentAt = Date.now();
    const { keys, redis } = this.options;
    const ok = await runScript(
      redis,
      RENEW,
      2,
      keys.driverLock(),
      keys.driverHolder(),
      String(token),
      String(this.ttlMs),
    );
    if (ok === 1 && this.tokenValue === token) this.validUntil = sentAt + this.ttlMs;
    else this.lose('lease taken over or expired');
  }

  private lose(reason: string): void {
    const token = this.tokenValue;
    this.tokenValue = null;
    this.validUntil = 0;
    this.options.logger.warn({ token, reason }, 'round-driver lease lost');
    this.options.onLost();
  }
}
