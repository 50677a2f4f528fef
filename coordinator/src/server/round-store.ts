import type { Redis } from 'ioredis';
import { z } from 'zod';
import { RoundPlanSchema, type RoundPlan } from '@flotilla/protocol';
import type { RedisKeys } from '../shared/keys.js';
import { AcceptedUpdateSchema, type AcceptedUpdate } from './accepted-update.js';
import { DEVICE_ACTIVE_LUA } from './device-registry.js';
import { ROUND_STATES, TERMINAL_STATES, type RoundState, type SourceState } from './round-machine.js';

/**
 * How long a decided round's keys stay in Redis once the task's next round opens: 7 days. The
 * signed round log is the permanent record; without an expiry a busy fleet's Redis grows by the
 * round hashes, selection sets and update records of every round ever run.
 */
export const DEFAULT_ROUND_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

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

// Fencing (scale-out): when the store is fenced, the last KEYS entry is the round driver's lock
// and ARGV[1] the writer's fencing token. A writer whose lease expired (or was taken over) holds
// a token that no longer matches the lock's value, so its write is refused (-1) atomically with it.
const FENCE_CHECK = `
local function fenced(lockIndex)
  if #KEYS < lockIndex then return false end
  return redis.call('GET', KEYS[lockIndex]) ~= ARGV[1]
end
`;

// Creates a round once: a second opener (e.g. two notifications of one new task) changes nothing.
const CREATE = `${FENCE_CHECK}
if fenced(3) then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if #KEYS >= 3 then redis.call('HSET', KEYS[1], 'fence', ARGV[1]) end
redis.call('SET', KEYS[2], ARGV[2])
return 1
`;

// Moves a round from one of the states in ARGV[2] (comma separated) to ARGV[3], setting extra fields.
const TRANSITION = `${FENCE_CHECK}
if fenced(2) then return -1 end
local st = redis.call('HGET', KEYS[1], 'state')
local ok = false
for s in string.gmatch(ARGV[2], '[^,]+') do if s == st then ok = true end end
if not ok then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if #KEYS >= 2 then redis.call('HSET', KEYS[1], 'fence', ARGV[1]) end
return 1
`;

const SET_SELECTED = `${FENCE_CHECK}
if fenced(2) then return -1 end
for i = 2, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end
return 1
`;

// Closes reporting for aggregation only with quorum, in one step with the count it reports:
// exclusions (revocation) change acceptedCount only in REPORTING, so the count returned is final.
const CLOSE_REPORTING = `${FENCE_CHECK}
if fenced(2) then return {'FENCED', 0} end
if redis.call('HGET', KEYS[1], 'state') ~= 'REPORTING' then return {'STATE', 0} end
local accepted = tonumber(redis.call('HGET', KEYS[1], 'acceptedCount') or '0')
if accepted < tonumber(redis.call('HGET', KEYS[1], 'minReports')) then return {'QUORUM', accepted} end
redis.call('HSET', KEYS[1], 'state', 'AGGREGATING', 'closedAt', ARGV[2])
if #KEYS >= 2 then redis.call('HSET', KEYS[1], 'fence', ARGV[1]) end
return {'OK', accepted}
`;

// Accepting an update and counting it is one atomic step; the ack is sent only after it returns.
// The device must still be active (KEYS[5]): a revocation either precedes it or excludes it after.
const ACCEPT = `${DEVICE_ACTIVE_LUA}
if not deviceActive(KEYS[5]) then return {'REVOKED_DEVICE', 0} end
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

/**
 * Fencing of the round store's state-machine writes (create, transition, selection): `lockKey` is
 * the round driver's lease key and `token()` this process's fencing token ('' when it holds none).
 */
export interface RoundFence {
  lockKey: string;
  token(): string;
  /** Called when a write was refused because the token is stale (the lease moved on). */
  onFenced?(operation: string, roundId: string): void;
}

export class RoundStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    /** Without a fence, writes are unconditional (a single coordinator process, or tests). */
    private readonly fence?: RoundFence,
    /** Expiry (ms) set on a decided round's keys when the next round opens; 0 keeps them forever. */
    private readonly retentionMs: number = 0,
  ) {}

  /** [extra KEYS, token ARGV] of a fenced write. */
  private fenceArgs(): { keys: string[]; token: string } {
    return this.fence ? { keys: [this.fence.lockKey], token: this.fence.token() } : { keys: [], token: '' };
  }

  private checkFenced(result: unknown, operation: string, roundId: string): boolean {
    if (result !== -1) return false;
    this.fence?.onFenced?.(operation, roundId);
    return true;
  }

  async get(roundId: string): Promise<RoundRecord | null> {
    const raw = await this.redis.hgetall(this.keys.round(roundId));
    if (Object.keys(raw).length === 0) return null;
    return RoundRecordSchema.parse(raw);
  }

  async current(taskId: string): Promise<RoundRecord | null> {
    const roundId = await this.redis.get(this.keys.currentRound(taskId));
    return roundId === null ? null : this.get(roundId);
  }

  /** Creates the round and makes it the task's current one; false if that round id already exists (or fenced). */
  async create(record: RoundRecord): Promise<boolean> {
    const previous = await this.redis.get(this.keys.currentRound(record.taskId));
    const args: string[] = [];
    for (const [k, v] of Object.entries(record))
      if (v !== undefined) args.push(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
    const fence = this.fenceArgs();
    const created = await this.redis.eval(
      CREATE,
      2 + fence.keys.length,
      this.keys.round(record.roundId),
      this.keys.currentRound(record.taskId),
      ...fence.keys,
      fence.token,
      record.roundId,
      ...args,
    );
    this.checkFenced(created, 'create', record.roundId);
    if (created === 1 && previous !== null && previous !== record.roundId) await this.expire(previous);
    return created === 1;
  }

  /** Sets the retention expiry on every key of a decided round (never on one still running). */
  private async expire(roundId: string): Promise<void> {
    if (this.retentionMs <= 0) return;
    const state = await this.redis.hget(this.keys.round(roundId), 'state');
    if (!TERMINAL_STATES.some((s) => s === state)) return;
    const k = this.keys;
    const keys = [
      k.round,
      k.roundWaiting,
      k.roundSelected,
      k.roundUpdates,
      k.roundSkips,
      k.roundOutcome,
      k.roundCandidate,
      k.roundRefusals,
      k.roundRefusalsPending,
      k.roundExcluded,
    ];
    const multi = this.redis.multi();
    for (const key of keys) multi.pexpire(key(roundId), this.retentionMs);
    await multi.exec();
  }

  /**
   * Atomic compare-and-set of the state; false when the round was not in one of `from`, or when
   * the store is fenced and this process's token is stale. Only moves of ROUND_TRANSITIONS
   * (round-machine.ts) compile: every state in `from` must be allowed to move to `to`.
   */
  async transition<To extends RoundState>(
    roundId: string,
    from: ReadonlyArray<SourceState<To>>,
    to: To,
    fields: Record<string, string | number> = {},
  ): Promise<boolean> {
    const args = Object.entries(fields).flatMap(([k, v]) => [k, String(v)]);
    const fence = this.fenceArgs();
    const result = await this.redis.eval(
      TRANSITION,
      1 + fence.keys.length,
      this.keys.round(roundId),
      ...fence.keys,
      fence.token,
      from.join(','),
      to,
      ...args,
    );
    this.checkFenced(result, `transition to ${to}`, roundId);
    return result === 1;
  }

  /**
   * A round still SELECTING gets a new selection deadline (nobody checked in by the old one): not
   * a move of the state machine, the round stays where it is. False when it left SELECTING.
   */
  async extendSelection(roundId: string, selectionDeadline: number): Promise<boolean> {
    const fence = this.fenceArgs();
    const result = await this.redis.eval(
      TRANSITION,
      1 + fence.keys.length,
      this.keys.round(roundId),
      ...fence.keys,
      fence.token,
      'SELECTING',
      'SELECTING',
      'selectionDeadline',
      String(selectionDeadline),
    );
    this.checkFenced(result, 'selection extension', roundId);
    return result === 1;
  }

  /**
   * REPORTING -> AGGREGATING when the round has its quorum, atomically with the accepted count it
   * closes with. `QUORUM` (with the count): still REPORTING, to be abandoned; `STATE`: not in
   * REPORTING; `FENCED`: this process's fencing token is stale.
   */
  async closeReporting(
    roundId: string,
    closedAt: number,
  ): Promise<{ status: 'OK' | 'QUORUM' | 'STATE' | 'FENCED'; accepted: number }> {
    const fence = this.fenceArgs();
    const [status, accepted] = (await this.redis.eval(
      CLOSE_REPORTING,
      1 + fence.keys.length,
      this.keys.round(roundId),
      ...fence.keys,
      fence.token,
      String(closedAt),
    )) as ['OK' | 'QUORUM' | 'STATE' | 'FENCED', number];
    if (status === 'FENCED') this.fence?.onFenced?.('close reporting', roundId);
    return { status, accepted: Number(accepted) };
  }

  async addWaiting(roundId: string, deviceId: string): Promise<number> {
    await this.redis.sadd(this.keys.roundWaiting(roundId), deviceId);
    return this.redis.scard(this.keys.roundWaiting(roundId));
  }

  async waiting(roundId: string): Promise<string[]> {
    return this.redis.smembers(this.keys.roundWaiting(roundId));
  }

  /** Records the selected devices; false when the write was fenced off (stale driver). */
  async setSelected(roundId: string, deviceIds: string[]): Promise<boolean> {
    if (deviceIds.length === 0) return true;
    const fence = this.fenceArgs();
    const result = await this.redis.eval(
      SET_SELECTED,
      1 + fence.keys.length,
      this.keys.roundSelected(roundId),
      ...fence.keys,
      fence.token,
      ...deviceIds,
    );
    return !this.checkFenced(result, 'select', roundId);
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
      5,
      this.keys.round(roundId),
      this.keys.roundUpdates(roundId),
      this.keys.roundSelected(roundId),
      this.keys.roundSkips(roundId),
      this.keys.device(deviceId),
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

  /** The accepted update of `deviceId` in the round, or null. */
  async acceptedUpdate(roundId: string, deviceId: string): Promise<AcceptedUpdate | null> {
    const raw = await this.redis.hget(this.keys.roundUpdates(roundId), deviceId);
    if (raw === null) return null;
    const parsed = AcceptedUpdateSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  }

  /** Accepted update records, deviceId -> JSON. */
  async updates(roundId: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.roundUpdates(roundId));
  }
}
