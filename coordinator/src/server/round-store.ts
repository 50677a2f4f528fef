import type { Redis } from 'ioredis';
import { z } from 'zod';
import { RoundPlanSchema, type RoundPlan } from '@flotilla/protocol';
import type { RedisKeys } from '../shared/keys.js';

export const ROUND_STATES = [
  'SELECTING',
  'CONFIGURING',
  'REPORTING',
  'AGGREGATING',
  'COMMITTED',
  'REJECTED',
  'ABANDONED',
] as const;
export type RoundState = (typeof ROUND_STATES)[number];
export const TERMINAL_STATES: readonly RoundState[] = ['COMMITTED', 'REJECTED', 'ABANDONED'];

/** The round hash `${prefix}:round:<roundId>`, as read back from Redis. */
export const RoundRecordSchema = z.object({
  roundId: z.string(),
  taskId: z.string(),
  roundNumber: z.coerce.number().int(),
  state: z.enum(ROUND_STATES),
  nonce: z.string(),
  openedAt: z.coerce.number(),
  /** Epoch ms when selection gives up. */
  selectionDeadline: z.coerce.number(),
  goalCount: z.coerce.number().int(),
  minReports: z.coerce.number().int(),
  acceptWindowMs: z.coerce.number().int(),
  /** Devices selected at once when this many wait (ceil(goalCount * overSelection)). */
  targetSelect: z.coerce.number().int(),
  /** Fewest waiting devices for selection to succeed at the timeout (ceil(goalCount * minGoalFraction)). */
  minSelect: z.coerce.number().int(),
  acceptedCount: z.coerce.number().int().default(0),
  skippedCount: z.coerce.number().int().default(0),
  selectedCount: z.coerce.number().int().default(0),
  /** Reporting deadline (epoch ms), set in CONFIGURING. */
  deadline: z.coerce.number().optional(),
  /** Earlier close once goalCount is reached: min(deadline, goal time + acceptWindowMs). */
  closeAt: z.coerce.number().optional(),
  plan: z
    .string()
    .transform((s): RoundPlan => RoundPlanSchema.parse(JSON.parse(s)))
    .optional(),
  reason: z.string().optional(),
});
export type RoundRecord = z.infer<typeof RoundRecordSchema>;

// Creates a round once: a second opener (e.g. two notifications of one new task) changes nothing.
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('SET', KEYS[2], ARGV[1])
return 1
`;

// Moves a round from one of the states in ARGV[1] (comma separated) to ARGV[2], setting extra fields.
const TRANSITION = `
local st = redis.call('HGET', KEYS[1], 'state')
local ok = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == st then ok = true end end
if not ok then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
`;

// Accepting an update and counting it is one atomic step; the ack is sent only after it returns.
const ACCEPT = `
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'REPORTING' then return {'ROUND_CLOSED', 0} end
local now = tonumber(ARGV[3])
local deadline = tonumber(redis.call('HGET', KEYS[1], 'deadline'))
local closeAt = redis.call('HGET', KEYS[1], 'closeAt')
if now > deadline or (closeAt and now > tonumber(closeAt)) then return {'ROUND_CLOSED', 0} end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then return {'NOT_SELECTED', 0} end
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then return {'DUPLICATE_UPDATE', 0} end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return {'DUPLICATE_UPDATE', 0} end
local count = redis.call('HINCRBY', KEYS[1], 'acceptedCount', 1)
local goal = tonumber(redis.call('HGET', KEYS[1], 'goalCount'))
if count >= goal and not closeAt then
  local c = math.min(deadline, now + tonumber(redis.call('HGET', KEYS[1], 'acceptWindowMs')))
  redis.call('HSET', KEYS[1], 'closeAt', tostring(c))
end
return {'OK', count}
`;

const SKIP = `
if redis.call('HGET', KEYS[1], 'state') ~= 'REPORTING' then return 'ROUND_CLOSED' end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then return 'NOT_SELECTED' end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 'DUPLICATE_UPDATE' end
if redis.call('HSETNX', KEYS[4], ARGV[1], ARGV[2]) == 0 then return 'DUPLICATE_UPDATE' end
redis.call('HINCRBY', KEYS[1], 'skippedCount', 1)
return 'OK'
`;

export class RoundStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async get(roundId: string): Promise<RoundRecord | null> {
    const raw = await this.redis.hgetall(this.keys.round(roundId));
    if (Object.keys(raw).length === 0) return null;
    return RoundRecordSchema.parse(raw);
  }

  async current(taskId: string): Promise<RoundRecord | null> {
    const roundId = await this.redis.get(this.keys.currentRound(taskId));
    return roundId === null ? null : this.get(roundId);
  }

  /** Creates the round and makes it the task's current one; false if that round id already exists. */
  async create(record: RoundRecord): Promise<boolean> {
    const args: string[] = [];
    for (const [k, v] of Object.entries(record))
      if (v !== undefined) args.push(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
    const created = await this.redis.eval(
      CREATE,
      2,
      this.keys.round(record.roundId),
      this.keys.currentRound(record.taskId),
      record.roundId,
      ...args,
    );
    return created === 1;
  }

  /** Atomic compare-and-set of the state; false when the round was not in one of `from`. */
  async transition(
    roundId: string,
    from: readonly RoundState[],
    to: RoundState,
    fields: Record<string, string | number> = {},
  ): Promise<boolean> {
    const args = Object.entries(fields).flatMap(([k, v]) => [k, String(v)]);
    const result = await this.redis.eval(
      TRANSITION,
      1,
      this.keys.round(roundId),
      from.join(','),
      to,
      ...args,
    );
    return result === 1;
  }

  async addWaiting(roundId: string, deviceId: string): Promise<number> {
    await this.redis.sadd(this.keys.roundWaiting(roundId), deviceId);
    return this.redis.scard(this.keys.roundWaiting(roundId));
  }

  async waiting(roundId: string): Promise<string[]> {
    return this.redis.smembers(this.keys.roundWaiting(roundId));
  }

  async setSelected(roundId: string, deviceIds: string[]): Promise<void> {
    if (deviceIds.length === 0) return;
    await this.redis.sadd(this.keys.roundSelected(roundId), ...deviceIds);
  }

  async isSelected(roundId: string, deviceId: string): Promise<boolean> {
    return (await this.redis.sismember(this.keys.roundSelected(roundId), deviceId)) === 1;
  }

  async hasResponded(roundId: string, deviceId: string): Promise<boolean> {
    const [u, s] = await Promise.all([
      this.redis.hexists(this.keys.roundUpdates(roundId), deviceId),
      this.redis.hexists(this.keys.roundSkips(roundId), deviceId),
    ]);
    return u === 1 || s === 1;
  }

  /** Atomically stores an accepted update and counts it. Returns the refusal code or the new count. */
  async accept(roundId: string, deviceId: string, recordJson: string, now: number) {
    const result = (await this.redis.eval(
      ACCEPT,
      4,
      this.keys.round(roundId),
      this.keys.roundUpdates(roundId),
      this.keys.roundSelected(roundId),
      this.keys.roundSkips(roundId),
      deviceId,
      recordJson,
      String(now),
    )) as [string, number];
    return { status: result[0], count: Number(result[1]) };
  }

  async skip(roundId: string, deviceId: string, recordJson: string): Promise<string> {
    return (await this.redis.eval(
      SKIP,
      4,
      this.keys.round(roundId),
      this.keys.roundUpdates(roundId),
      this.keys.roundSelected(roundId),
      this.keys.roundSkips(roundId),
      deviceId,
      recordJson,
    )) as string;
  }

  /** Accepted update records, deviceId -> JSON. */
  async updates(roundId: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.roundUpdates(roundId));
  }
}
