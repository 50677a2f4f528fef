import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Logger } from 'pino';
import {
  LogLeafSchema,
  logLeafOf,
  type LogLeaf,
  type UpdateMetadata,
  type WireError,
} from '@flotilla/protocol';
import type { RedisKeys } from '../shared/keys.js';
import { resultCode } from '../shared/lua-script.js';
import { parseJsonAs } from '../shared/parse-json-as.js';
import { KEEP_REFUSAL_LEAF, RECORD_REFUSAL, TAKE_REFUSALS } from './lua/round-scripts.js';
import type { RoundEvents } from './round-events.js';
import { runScript } from '../shared/redis-script.js';

// Refused updates in the round log, bounded per (round, device, reason): the first refusal gets
// its own `update.refused` record; repeats are counted in Redis and written as `update.refusals`
// records (counts since the previous one) before the round closes or is abandoned, and every
// `flushIntervalMs` for refusals naming a round that has ended. A device repeating a refused
// submission thus adds at most one record per reason and round, plus its share of the
// periodic count records, however many times it repeats it. The device is answered with the
// leaf of that first record (kept in Redis for the repeats), so it can prove why it was refused.

/** Default period of the count flush for rounds with repeats not yet logged, in ms. */
export const DEFAULT_REFUSAL_FLUSH_MS = 30_000;

/** The reply of round-take-refusals.lua: refusal total, pending counts as field/count pairs, accepted count. */
const TakenSchema = z.tuple([z.string(), z.array(z.string()), z.string()]);

export interface RefusalLogOptions {
  redis: Redis;
  keys: RedisKeys;
  events: RoundEvents;
  logger: Logger;
  /** Period of the count flush of ended rounds, in ms. Default `DEFAULT_REFUSAL_FLUSH_MS` (30 000). */
  flushIntervalMs?: number;
  /** Whether this process drives the rounds: only the driver flushes periodically. Default: always. */
  leads?: () => boolean;
}

/** A refusal of an update naming a round that has a plan (so `round.opened` is in the log). */
export interface Refusal {
  taskId: string;
  roundId: string;
  /** The round's clip norm, for the record. */
  clipBound: number | null;
  /** The round promises differential privacy: the record withholds what the update says of itself. */
  dp: boolean;
  deviceId: string;
  error: WireError;
  metadata: UpdateMetadata;
}

export class RefusalLog {
  private timer: NodeJS.Timeout | null = null;
  /** First refusals being appended by this process, by `<roundId> <field>`: repeats wait for them. */
  private readonly appending = new Map<string, Promise<LogLeaf | null>>();

  constructor(private readonly options: RefusalLogOptions) {}

  /**
   * Counts one refusal; the first of its (round, device, reason) is appended in full. Resolves
   * with the leaf of that first refusal's record, which the device is answered with; null when
   * it is not logged (no round log, a failed append, the round expired, or a repeat arriving
   * while another coordinator process is still appending the first one).
   */
  async record(refusal: Refusal): Promise<LogLeaf | null> {
    const { redis, keys, events } = this.options;
    const device = events.pseudonymize(refusal.deviceId);
    const field = `${device} ${refusal.error.code}`;
    const counted = resultCode(
      RECORD_REFUSAL,
      await runScript(
        redis,
        RECORD_REFUSAL.source,
        4,
        keys.round(refusal.roundId),
        keys.roundRefusals(refusal.roundId),
        keys.roundRefusalsPending(refusal.roundId),
        keys.refusalsPending(),
        field,
        refusal.roundId,
      ),
    );
    if (counted === 'GONE') return null;
    const key = `${refusal.roundId} ${field}`;
    if (counted === 'REPEAT') return this.appending.get(key) ?? this.firstLeaf(refusal.roundId, field);
    const appended = this.appendFirst(refusal, device, field);
    this.appending.set(key, appended);
    try {
      return await appended;
    } finally {
      this.appending.delete(key);
    }
  }

  /** Appends the first refusal of `field` in full and keeps its leaf for the repeats. */
  private async appendFirst(refusal: Refusal, device: string, field: string): Promise<LogLeaf | null> {
    const { redis, keys, events } = this.options;
    const { metadata } = refusal;
    const record = await events.append({
      type: 'update.refused',
      taskId: refusal.taskId,
      roundId: refusal.roundId,
      device,
      reason: refusal.error.code,
      message: refusal.error.message.slice(0, 2000),
      // In a DP round the update is named by its commitment, as accepted ones are (docs/privacy.md).
      blobDigest: refusal.dp
        ? events.commitUpdate(refusal.roundId, metadata.blobDigest)
        : metadata.blobDigest,
      norm: null,
      clipBound: refusal.clipBound,
      clipped: refusal.dp ? null : metadata.clipped,
      bytes: refusal.dp ? null : metadata.blobBytes,
    });
    if (!record) return null;
    const leaf = logLeafOf(record);
    await runScript(
      redis,
      KEEP_REFUSAL_LEAF.source,
      2,
      keys.round(refusal.roundId),
      keys.roundRefusalLeaves(refusal.roundId),
      field,
      JSON.stringify(leaf),
    );
    return leaf;
  }

  /** The kept leaf of the first refusal of `field` (`<pseudonym> <reason>`) in the round, if any. */
  private async firstLeaf(roundId: string, field: string): Promise<LogLeaf | null> {
    const json = await this.options.redis.hget(this.options.keys.roundRefusalLeaves(roundId), field);
    if (json === null) return null;
    const leaf = parseJsonAs(LogLeafSchema, json);
    if (leaf !== null) return leaf;
    this.options.logger.warn({ roundId, field }, 'kept refusal leaf is malformed; answered without it');
    return null;
  }

  /**
   * Appends the round's repeated refusals not yet logged as one `update.refusals` record (none:
   * nothing is written). Returns the round's refusal total (repeats included) and accepted count
   * at that moment, read in the same step, which `round.closed` / `round.abandoned` report.
   */
  async flush(round: { taskId: string; roundId: string }): Promise<{ refused: number; accepted: number }> {
    const { redis, keys, events } = this.options;
    const [total, flat, accepted] = TakenSchema.parse(
      await runScript(
        redis,
        TAKE_REFUSALS.source,
        3,
        keys.roundRefusalsPending(round.roundId),
        keys.refusalsPending(),
        keys.round(round.roundId),
        round.roundId,
      ),
    );
    const counts: Array<{ device: string; reason: string; count: number }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const [device = '', reason = ''] = (flat[i] ?? '').split(' ');
      counts.push({ device, reason, count: Number(flat[i + 1]) });
    }
    if (counts.length > 0) {
      counts.sort((a, b) => a.device.localeCompare(b.device) || a.reason.localeCompare(b.reason));
      await events.append({ type: 'update.refusals', taskId: round.taskId, roundId: round.roundId, counts });
    }
    return { refused: Number(total), accepted: Number(accepted) };
  }

  /** Flushes every round with repeats not yet logged (rounds that ended keep receiving refusals). */
  async flushPending(): Promise<void> {
    const { redis, keys } = this.options;
    for (const roundId of await redis.smembers(keys.refusalsPending())) {
      const taskId = await redis.hget(keys.round(roundId), 'taskId');
      if (taskId === null) {
        // The round expired with its counts: nothing left to attribute them to.
        await redis.srem(keys.refusalsPending(), roundId);
        continue;
      }
      await this.flush({ taskId, roundId });
    }
  }

  /** Starts the periodic flush (only acting while `leads()`). */
  start(): void {
    const every = this.options.flushIntervalMs ?? DEFAULT_REFUSAL_FLUSH_MS;
    this.timer = setInterval(() => {
      if (this.options.leads && !this.options.leads()) return;
      this.flushPending().catch((error: unknown) =>
        this.options.logger.warn({ err: error }, 'refusal counts not flushed'),
      );
    }, every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
