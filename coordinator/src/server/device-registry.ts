import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { DeviceIdSchema, FlotillaError, PublicKeySchema, fromBase64 } from '@flotilla/protocol';
import { readLuaSource } from '../shared/lua-script.js';
import { RedisStore, type RedisStoreOptions } from '../shared/redis-store.js';
import { runScript } from '../shared/redis-script.js';

export const DeviceRecordSchema = z.object({
  deviceId: DeviceIdSchema,
  publicKey: PublicKeySchema,
  status: z.enum(['active', 'revoked']),
  enrolledAt: z.number().int(),
  /** How the device was enrolled. */
  via: z.enum(['token', 'operator']),
  revokedAt: z.number().int().optional(),
});
export type DeviceRecord = z.infer<typeof DeviceRecordSchema>;

/** A stored device record; null when absent or not a record. */
export function parseDeviceRecord(raw: string | null): DeviceRecord | null {
  if (raw === null) return null;
  const parsed = DeviceRecordSchema.safeParse(JSON.parse(raw));
  return parsed.success ? parsed.data : null;
}

export type DeviceRegistryOptions = RedisStoreOptions;

function sha256HexOf(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Lua: `deviceActive(key)` is true when the device record stored under `key` is enrolled and not
 * revoked (lua/includes/device-active.lua). Scripts that must not act for a revoked device include
 * it, so the check and their write are one atomic step against a concurrent revocation.
 */
export const DEVICE_ACTIVE_LUA = readLuaSource(new URL('./lua/', import.meta.url), 'includes/device-active');

/**
 * The key index entry of a public key: SHA-256 of its 32 bytes, so the several base64 spellings of
 * one key (the last character carries 2 unused bits) are one entry.
 */
function keyHashOf(publicKey: string): string {
  return createHash('sha256').update(fromBase64(publicKey)).digest('hex');
}

// One public key, one device id: a key held by another id (active or revoked: a revoked key is
// not moved to a new id either) is refused. KEYS[last]: the key index entry; ARGV[2]: device id.

// Consumes a one-time token and enrolls the device in one step, so a token enrolls exactly one device.
const ENROLL_WITH_TOKEN = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'BAD_TOKEN' end
local existing = redis.call('GET', KEYS[2])
if existing then return 'EXISTS' end
local holder = redis.call('GET', KEYS[4])
if holder and holder ~= ARGV[2] then return 'KEY_IN_USE' end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('SET', KEYS[4], ARGV[2])
return 'OK'
`;

// An operator registration: replaces a revoked enrollment of the id, refuses an active one.
const REGISTER = `${DEVICE_ACTIVE_LUA}
if deviceActive(KEYS[1]) then return 'EXISTS' end
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[2] then return 'KEY_IN_USE' end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[2])
return 'OK'
`;

const keyInUse = (): FlotillaError =>
  new FlotillaError('KEY_IN_USE', 'this public key is already enrolled under another device id');

/** Enrolled devices: one-time enrollment tokens, direct key registration, revocation. */
export class DeviceRegistry extends RedisStore {
  /**
   * Issues a one-time enrollment token (returned once; only its SHA-256 is stored).
   * @param ttlMs lifetime in ms, default 24 h.
   */
  async createEnrollmentToken(
    options: { ttlMs?: number } = {},
  ): Promise<{ token: string; expiresAt: number }> {
    const ttlMs = options.ttlMs ?? 86_400_000;
    const token = randomBytes(32).toString('base64url');
    const expiresAt = Date.now() + ttlMs;
    await this.redis.set(
      this.keys.enrollToken(sha256HexOf(token)),
      JSON.stringify({ expiresAt }),
      'PX',
      ttlMs,
    );
    return { token, expiresAt };
  }

  /** A device presents a token and its public key. UNAUTHORIZED for an unknown/used/expired token. */
  async enrollWithToken(input: {
    token: string;
    deviceId: string;
    publicKey: string;
  }): Promise<DeviceRecord> {
    const record = this.newRecord(input.deviceId, input.publicKey, 'token');
    const result = await this.storeNewRecord(ENROLL_WITH_TOKEN, record, [
      this.keys.enrollToken(sha256HexOf(input.token)),
    ]);
    if (result === 'BAD_TOKEN')
      throw new FlotillaError('UNAUTHORIZED', 'enrollment token unknown, used or expired');
    return record;
  }

  /** Operator registers a public key directly (replaces a revoked enrollment, refuses an active one). */
  async registerDevice(input: { deviceId: string; publicKey: string }): Promise<DeviceRecord> {
    const record = this.newRecord(input.deviceId, input.publicKey, 'operator');
    await this.storeNewRecord(REGISTER, record, []);
    return record;
  }

  /**
   * Runs an enrollment script (ENROLL_WITH_TOKEN, REGISTER) for `record`: KEYS are `leadingKeys`,
   * then the device's record, the device set and the key index entry; ARGV the record and its id.
   * Throws for EXISTS and KEY_IN_USE; returns the script's other answers.
   */
  private async storeNewRecord(
    script: string,
    record: DeviceRecord,
    leadingKeys: string[],
  ): Promise<unknown> {
    const keys = [
      ...leadingKeys,
      this.keys.device(record.deviceId),
      this.keys.devices(),
      this.keys.deviceKey(keyHashOf(record.publicKey)),
    ];
    const result = await runScript(
      this.redis,
      script,
      keys.length,
      ...keys,
      JSON.stringify(record),
      record.deviceId,
    );
    if (result === 'EXISTS')
      throw new FlotillaError('FORBIDDEN', `device ${record.deviceId} is already enrolled`);
    if (result === 'KEY_IN_USE') throw keyInUse();
    return result;
  }

  /**
   * Marks the enrollment revoked (UNKNOWN_DEVICE if there is none). This is only the record: the
   * coordinator's `revokeDevice` (and `DELETE /api/admin/devices/:id`) also ends the device's
   * sessions, sockets and update in open rounds.
   */
  async revokeDevice(deviceId: string): Promise<DeviceRecord> {
    const existing = await this.getDevice(deviceId);
    if (!existing) throw new FlotillaError('UNKNOWN_DEVICE', `device ${deviceId} is not enrolled`);
    const revoked: DeviceRecord = { ...existing, status: 'revoked', revokedAt: Date.now() };
    await this.redis.set(this.keys.device(deviceId), JSON.stringify(revoked));
    return revoked;
  }

  /**
   * Indexes the public keys of enrollments made before the key index existed (once per Redis and
   * prefix; idempotent). Returns the keys enrolled under several device ids, which the index
   * cannot hold: the first id keeps the key; revoke the others.
   */
  async indexKeys(): Promise<Array<{ publicKey: string; deviceIds: string[] }>> {
    if ((await this.redis.exists(this.keys.deviceKeysIndexed())) === 1) return [];
    const byKey = new Map<string, DeviceRecord[]>();
    for (const record of await this.listDevices()) {
      const hash = keyHashOf(record.publicKey);
      byKey.set(hash, [...(byKey.get(hash) ?? []), record]);
    }
    const conflicts: Array<{ publicKey: string; deviceIds: string[] }> = [];
    const pipeline = this.redis.pipeline();
    for (const [hash, records] of byKey) {
      const [first] = records;
      if (!first) continue;
      pipeline.set(this.keys.deviceKey(hash), first.deviceId, 'NX');
      if (records.length > 1)
        conflicts.push({ publicKey: first.publicKey, deviceIds: records.map((r) => r.deviceId) });
    }
    pipeline.set(this.keys.deviceKeysIndexed(), String(Date.now()));
    await pipeline.exec();
    return conflicts;
  }

  async getDevice(deviceId: string): Promise<DeviceRecord | null> {
    if (!DeviceIdSchema.safeParse(deviceId).success) return null;
    return parseDeviceRecord(await this.redis.get(this.keys.device(deviceId)));
  }

  async listDevices(): Promise<DeviceRecord[]> {
    const ids = (await this.redis.smembers(this.keys.devices())).sort();
    const records = await Promise.all(ids.map((id) => this.getDevice(id)));
    return records.filter((r): r is DeviceRecord => r !== null);
  }

  private newRecord(deviceId: string, publicKey: string, via: DeviceRecord['via']): DeviceRecord {
    const parsed = DeviceRecordSchema.safeParse({
      deviceId,
      publicKey,
      status: 'active',
      enrolledAt: Date.now(),
      via,
    });
    if (!parsed.success)
      throw new FlotillaError('BAD_REQUEST', `invalid enrollment: ${parsed.error.message}`);
    return parsed.data;
  }
}
