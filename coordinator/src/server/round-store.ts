import type { Redis } from 'ioredis';
import { z } from 'zod';
import { RoundPlanSchema, type RoundPlan } from '@flotilla/protocol';
import type { RedisKeys } from '../shared/keys.js';
import { AcceptedUpdateSchema, type AcceptedUpdate } from './accepted-update.js';
import { codeWithCount, resultCode, type LuaScript } from '../shared/lua-script.js';
import {
  ACCEPT_UPDATE,
  CLOSE_REPORTING,
  CREATE_ROUND,
  RECORD_FINAL_REFUSAL,
  RECORD_SKIP,
  SELECT_DEVICES,
  TRANSITION_ROUND,
} from './lua/round-scripts.js';
import { ROUND_STATES, TERMINAL_STATES, type RoundState, type SourceState } from './round-machine.js';
import { runScript } from '../shared/redis-script.js';
import { ParsedTextCache } from '../shared/parsed-text-cache.js';

/**
 * How long a decided round's keys stay in Redis once the task's next round opens: 7 days. The
 * signed round log is the permanent record; without an expiry a busy fleet's Redis grows by the
 * round hashes, selection sets and update records of every round ever run.
 */
export const DEFAULT_ROUND_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

/** Plans as parsed lately: every upload and submission of a round reads the same plan text. */
const roundPlans = new ParsedTextCache((text): RoundPlan => RoundPlanSchema.parse(JSON.parse(text)));

/** A round's plan from its stored JSON text (parsed once per text, shared and frozen). */
export function parseRoundPlan(text: string): RoundPlan {
  return roundPlans.get(text);
}

/** A round hash as read back from Redis (its fields and values); null when it has none. */
export function parseRoundRecord(raw: Record<string, string>): RoundRecord | null {
  if (Object.keys(raw).length === 0) return null;
  return RoundRecordSchema.parse(raw);
}

/** A stored accepted-update record; null when absent or not a record. */
export function parseAcceptedUpdate(raw: string | null): AcceptedUpdate | null {
  if (raw === null) return null;
  const parsed = AcceptedUpdateSchema.safeParse(JSON.parse(raw));
  return parsed.success ? parsed.data : null;
}

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
  /** Epoch ms of the first check-in: the selection window runs `selectionTimeoutMs` from it. */
  firstCheckInAt: z.coerce.number().optional(),
  goalCount: z.coerce.number().int(),
  minReports: z.coerce.number().int(),
  acceptWindowMs: z.coerce.number().int(),
  /** Devices selected at once when this many wait (ceil(goalCount * overSelection)). */
  targetSelect: z.coerce.number().int(),
  /** Fewest waiting devices for selection to succeed at the timeout (ceil(goalCount * minGoalFraction)). */
  minSelect: z.coerce.number().int(),
  acceptedCount: z.coerce.number().int().default(0),
  skippedCount: z.coerce.number().int().default(0),
  /** Selected devices answered by a final refusal only (protocol's FINAL_UPDATE_REFUSALS). */
  finalRefusedCount: z.coerce.number().int().default(0),
  selectedCount: z.coerce.number().int().default(0),
  /** Reporting deadline (epoch ms), set in CONFIGURING. */
  deadline: z.coerce.number().optional(),
  /** Earlier close once goalCount is reached: min(deadline, goal time + acceptWindowMs). */
  closeAt: z.coerce.number().optional(),
  plan: z.string().transform(parseRoundPlan).optional(),
  reason: z.string().optional(),
  /**
   * `1` when the round promises differential privacy (its `round.opened.dp`), set with the plan:
   * its round-log records then name updates by commitment and withhold per-update values.
   */
  dp: z
    .enum(['0', '1'])
    .transform((v) => v === '1')
    .optional(),
});
export type RoundRecord = z.infer<typeof RoundRecordSchema>;

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

  /**
   * Runs a fenced round script: its `keys`, then the lease key when the store is fenced; ARGV[1]
   * the fencing token, then `args`. Returns the script's reply.
   */
  private evalFenced(script: LuaScript<string>, keys: string[], args: string[]): Promise<unknown> {
    const fence = this.fence
      ? { keys: [this.fence.lockKey], token: this.fence.token() }
      : { keys: [], token: '' };
    return runScript(
      this.redis,
      script.source,
      keys.length + fence.keys.length,
      ...keys,
      ...fence.keys,
      fence.token,
      ...args,
    );
  }

  /** True (and the fence told) when a fenced write was refused: this process's token is stale. */
  private refusedAsStale(code: string, operation: string, roundId: string): boolean {
    if (code !== 'FENCED') return false;
    this.fence?.onFenced?.(operation, roundId);
    return true;
  }

  async get(roundId: string): Promise<RoundRecord | null> {
    return parseRoundRecord(await this.redis.hgetall(this.keys.round(roundId)));
  }

  async current(taskId: string): Promise<RoundRecord | null> {
    const roundId = await this.currentId(taskId);
    return roundId === null ? null : this.get(roundId);
  }

  /** The id of the task's current round, without reading the round. */
  currentId(taskId: string): Promise<string | null> {
    return this.redis.get(this.keys.currentRound(taskId));
  }

  /** Creates the round and makes it the task's current one; false if that round id already exists (or fenced). */
  async create(record: RoundRecord): Promise<boolean> {
    const previous = await this.redis.get(this.keys.currentRound(record.taskId));
    const fields: string[] = [];
    for (const [k, v] of Object.entries(record))
      if (v !== undefined) fields.push(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
    const reply = await this.evalFenced(
      CREATE_ROUND,
      [this.keys.round(record.roundId), this.keys.currentRound(record.taskId)],
      [record.roundId, ...fields],
    );
    const code = resultCode(CREATE_ROUND, reply);
    this.refusedAsStale(code, 'create', record.roundId);
    if (code === 'CREATED' && previous !== null && previous !== record.roundId) await this.expire(previous);
    return code === 'CREATED';
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
      k.roundFinalRefusals,
      k.roundOutcome,
      k.roundCandidate,
      k.roundRefusals,
      k.roundRefusalsPending,
      k.roundRefusalLeaves,
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
    const reply = await this.evalFenced(
      TRANSITION_ROUND,
      [this.keys.round(roundId)],
      [from.join(','), to, ...Object.entries(fields).flatMap(([k, v]) => [k, String(v)])],
    );
    const code = resultCode(TRANSITION_ROUND, reply);
    this.refusedAsStale(code, `transition to ${to}`, roundId);
    return code === 'MOVED';
  }

  /**
   * A round still SELECTING gets a new selection deadline (nobody checked in by the old one): not
   * a move of the state machine, the round stays where it is. False when it left SELECTING.
   */
  async extendSelection(roundId: string, selectionDeadline: number): Promise<boolean> {
    // The compare-and-set of a move, with SELECTING as both ends.
    const reply = await this.evalFenced(
      TRANSITION_ROUND,
      [this.keys.round(roundId)],
      ['SELECTING', 'SELECTING', 'selectionDeadline', String(selectionDeadline)],
    );
    const code = resultCode(TRANSITION_ROUND, reply);
    this.refusedAsStale(code, 'selection extension', roundId);
    return code === 'MOVED';
  }

  /**
   * REPORTING -> AGGREGATING when the round has its quorum, atomically with the accepted count it
   * closes with. `QUORUM` (with the count): still REPORTING, to be abandoned; `STATE`: not in
   * REPORTING; `FENCED`: this process's fencing token is stale.
   */
  async closeReporting(
    roundId: string,
    closedAt: number,
  ): Promise<{ status: keyof typeof CLOSE_REPORTING.codes; accepted: number }> {
    const reply = await this.evalFenced(CLOSE_REPORTING, [this.keys.round(roundId)], [String(closedAt)]);
    const { code, count } = codeWithCount(CLOSE_REPORTING, reply);
    this.refusedAsStale(code, 'close reporting', roundId);
    return { status: code, accepted: count };
  }

  /** Adds a waiting device; the round keeps the time of its first check-in (`firstCheckInAt`). */
  async addWaiting(roundId: string, deviceId: string, now: number = Date.now()): Promise<number> {
    const replies = await this.redis
      .multi()
      .sadd(this.keys.roundWaiting(roundId), deviceId)
      .hsetnx(this.keys.round(roundId), 'firstCheckInAt', String(now))
      .scard(this.keys.roundWaiting(roundId))
      .exec();
    const count = replies?.[2]?.[1];
    return typeof count === 'number' ? count : 0;
  }

  async waiting(roundId: string): Promise<string[]> {
    return this.redis.smembers(this.keys.roundWaiting(roundId));
  }

  /** Records the selected devices; false when the write was fenced off (stale driver). */
  async setSelected(roundId: string, deviceIds: string[]): Promise<boolean> {
    if (deviceIds.length === 0) return true;
    const reply = await this.evalFenced(SELECT_DEVICES, [this.keys.roundSelected(roundId)], deviceIds);
    return !this.refusedAsStale(resultCode(SELECT_DEVICES, reply), 'select', roundId);
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

  /**
   * The keys a device's answer to a round touches, in the order the accept, skip and
   * final-refusal scripts take them.
   */
  private responseKeys(roundId: string): string[] {
    const { keys } = this;
    return [
      keys.round(roundId),
      keys.roundUpdates(roundId),
      keys.roundSelected(roundId),
      keys.roundSkips(roundId),
      keys.roundFinalRefusals(roundId),
    ];
  }

  /** Runs a script storing a device's answer: the response keys, then `extraKeys`; `args` as ARGV. */
  private evalResponse(
    script: LuaScript<string>,
    roundId: string,
    extraKeys: string[],
    args: string[],
  ): Promise<unknown> {
    const keys = [...this.responseKeys(roundId), ...extraKeys];
    return runScript(this.redis, script.source, keys.length, ...keys, ...args);
  }

  /**
   * Atomically stores an accepted update and counts it: `OK` with the new accepted count, or the
   * refusal (a FlotillaError code) with count 0.
   */
  async accept(
    roundId: string,
    deviceId: string,
    recordJson: string,
    now: number,
  ): Promise<{ status: keyof typeof ACCEPT_UPDATE.codes; count: number }> {
    const reply = await this.evalResponse(
      ACCEPT_UPDATE,
      roundId,
      [this.keys.device(deviceId)],
      [deviceId, recordJson, String(now)],
    );
    const { code, count } = codeWithCount(ACCEPT_UPDATE, reply);
    return { status: code, count };
  }

  /** Stores a selected device's skip and counts it: `OK`, or the refusal (a FlotillaError code). */
  async skip(roundId: string, deviceId: string, recordJson: string): Promise<keyof typeof RECORD_SKIP.codes> {
    const reply = await this.evalResponse(RECORD_SKIP, roundId, [], [deviceId, recordJson]);
    return resultCode(RECORD_SKIP, reply);
  }

  /**
   * Counts a selected device as answered after a final refusal `code` of its update: `COUNTED`,
   * or why not (the round closed, the device is not selected or already answered).
   */
  async countFinalRefusal(
    roundId: string,
    deviceId: string,
    code: string,
    now: number,
  ): Promise<keyof typeof RECORD_FINAL_REFUSAL.codes> {
    const reply = await this.evalResponse(RECORD_FINAL_REFUSAL, roundId, [], [deviceId, code, String(now)]);
    return resultCode(RECORD_FINAL_REFUSAL, reply);
  }

  /** Counts an accepted update acknowledged once more (re-sent after a lost ack; the dashboard shows it). */
  async countResubmission(roundId: string): Promise<void> {
    await this.redis.hincrby(this.keys.round(roundId), 'resubmittedCount', 1);
  }

  /** The round's refused submissions, repeats included (counted by refusal-log.ts). */
  async refusedCount(roundId: string): Promise<number> {
    const count = await this.redis.hget(this.keys.round(roundId), 'refusedCount');
    // No field: nothing was refused in the round.
    return count === null ? 0 : Number(count);
  }

  /** The accepted update of `deviceId` in the round, or null. */
  async acceptedUpdate(roundId: string, deviceId: string): Promise<AcceptedUpdate | null> {
    return parseAcceptedUpdate(await this.redis.hget(this.keys.roundUpdates(roundId), deviceId));
  }

  /** Accepted update records, deviceId -> JSON. */
  async updates(roundId: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.roundUpdates(roundId));
  }
}
