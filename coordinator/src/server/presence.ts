import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisKeys } from '../shared/keys.js';

/** Default presence lifetime in ms without a refresh (a SIGKILLed process's devices fade after it). */
export const DEFAULT_PRESENCE_TTL_MS = 15_000;

export interface FleetPresenceOptions {
  redis: Redis;
  keys: RedisKeys;
  logger: Logger;
  /** How long a process's claim on a device lasts without a refresh, in ms. Default 15_000. */
  ttlMs?: number;
  /** This process's id in the presence hashes. Default: random. */
  processId?: string;
}

/**
 * Fleet-wide presence: which devices hold an authenticated socket on any coordinator process.
 * One hash per device, `presence:<deviceId>`, field = process id, value = epoch ms until which
 * that process vouches for the socket; the process holding the socket refreshes it every ttl/3.
 * A field of a dead process stops counting at its expiry; the key itself expires with PX ttl.
 */
export class FleetPresence {
  readonly processId: string;
  private readonly ttlMs: number;
  /** Local socket counts of the devices connected to this process. */
  private readonly local = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: FleetPresenceOptions) {
    this.ttlMs = options.ttlMs ?? DEFAULT_PRESENCE_TTL_MS;
    this.processId = options.processId ?? randomBytes(8).toString('hex');
  }

  start(): void {
    this.timer = setInterval(
      () => {
        this.refresh().catch((error: unknown) =>
          this.options.logger.warn({ err: error }, 'presence refresh failed'),
        );
      },
      Math.max(100, Math.floor(this.ttlMs / 3)),
    );
  }

  /** Devices with a socket on this process. */
  get localCount(): number {
    return this.local.size;
  }

  /** An authenticated socket of `deviceId` opened on this process. */
  async add(deviceId: string): Promise<void> {
    const n = (this.local.get(deviceId) ?? 0) + 1;
    this.local.set(deviceId, n);
    if (n === 1) await this.claim([deviceId]);
  }

  /** One of this process's sockets of `deviceId` closed. */
  async remove(deviceId: string): Promise<void> {
    const n = (this.local.get(deviceId) ?? 1) - 1;
    if (n > 0) {
      this.local.set(deviceId, n);
      return;
    }
    this.local.delete(deviceId);
    await this.options.redis.hdel(this.options.keys.presence(deviceId), this.processId);
  }

  /** True when some live process holds a socket of `deviceId`. */
  async isOnline(deviceId: string): Promise<boolean> {
    if ((this.local.get(deviceId) ?? 0) > 0) return true;
    const claims = await this.options.redis.hvals(this.options.keys.presence(deviceId));
    const now = Date.now();
    return claims.some((until) => Number(until) > now);
  }

  /** Re-claims every local device (pipelined). */
  async refresh(): Promise<void> {
    const ids = [...this.local.keys()];
    for (let i = 0; i < ids.length; i += 1000) await this.claim(ids.slice(i, i + 1000));
  }

  /** Stops refreshing and withdraws this process's claims. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const ids = [...this.local.keys()];
    this.local.clear();
    const pipeline = this.options.redis.pipeline();
    for (const id of ids) pipeline.hdel(this.options.keys.presence(id), this.processId);
    await pipeline.exec().catch(() => undefined);
  }

  private async claim(deviceIds: string[]): Promise<void> {
    if (deviceIds.length === 0) return;
    const until = String(Date.now() + this.ttlMs);
    const pipeline = this.options.redis.pipeline();
    for (const id of deviceIds) {
      const key = this.options.keys.presence(id);
      pipeline.hset(key, this.processId, until);
      pipeline.pexpire(key, this.ttlMs);
    }
    await pipeline.exec();
  }
}
