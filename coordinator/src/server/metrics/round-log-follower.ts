import type { Redis } from 'ioredis';
import {
  firstTreeHeadSigner,
  isTreeHeadLine,
  signedPrefix,
  summarizeRoundLog,
  verifyRoundLog,
  type RoundLogLine,
  type RoundLogSummary,
  type TreeHeadLine,
  type VerifyRoundLogResult,
} from '@flotilla/protocol';
import { readRoundLogEntries } from '../../shared/round-log/index.js';

export interface RoundLogFollowerOptions {
  redis: Redis;
  /** Redis key prefix. */
  prefix: string;
  /** Pinned first round-log key (base64); default the key of the first tree head. */
  trustedKey?: string;
  /**
   * Re-verify the whole chain at most this often, in ms, and only when new records arrived.
   * A verification rehashes every record and checks every tree head. Default 2000.
   */
  verifyEveryMs?: number;
  /** The round-log mirror: lines trimmed from the Redis stream are read from it. */
  mirrorPath?: string;
}

/** Chain status as the dashboard shows it. */
export interface ChainStatus {
  /** Lines in the log now (records and tree heads). */
  records: number;
  /** The last signed tree head now: its line, size and root. */
  head: { seq: number; treeSize: number; rootHash: string } | null;
  /** Result of the latest verification (tree heads, roots, consistency, round semantics); null before the first. */
  verified: {
    ok: boolean;
    /** Last line covered by that verification, the last tree head then (null: nothing signed yet). */
    through: number | null;
    firstBad: number | null;
    problems: Array<{ seq: number | null; code: string; message: string }>;
    /** Epoch ms. */
    at: number;
  } | null;
  trustedKeySource: 'configured' | 'first-record';
}

/**
 * Follows the signed round log in Redis incrementally (only records after the last seen seq are
 * read), and caches what the dashboard and /metrics derive from it: the summary, ε per task and
 * the chain verification (re-run when the head moved, at most every `verifyEveryMs`).
 */
export class RoundLogFollower {
  private records: RoundLogLine[] = [];
  private summaryCache: { seq: number; summary: RoundLogSummary } | null = null;
  private verified: ChainStatus['verified'] = null;
  private refreshing: Promise<void> | null = null;

  constructor(private readonly options: RoundLogFollowerOptions) {}

  /** Reads the records appended since the last call (concurrent callers share one read). */
  refresh(): Promise<void> {
    this.refreshing ??= this.readNew().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async readNew(): Promise<void> {
    const last = this.records.at(-1);
    const fresh = await readRoundLogEntries(this.options.redis, this.options.prefix, {
      from: last ? last.seq + 1 : 0,
      ...(this.options.mirrorPath === undefined ? {} : { mirrorPath: this.options.mirrorPath }),
    });
    if (fresh.length > 0) this.records = this.records.concat(fresh);
  }

  get headSeq(): number {
    return this.records.at(-1)?.seq ?? -1;
  }

  summary(): RoundLogSummary {
    const seq = this.headSeq;
    if (this.summaryCache?.seq !== seq) this.summaryCache = { seq, summary: summarizeRoundLog(this.records) };
    return this.summaryCache.summary;
  }

  /** Latest ε per task (the accountant's running total, so the last aggregation record wins). */
  epsilonByTask(): Map<string, number> {
    const out = new Map<string, number>();
    for (const point of this.summary().epsilonOverTime) out.set(point.taskId, point.epsilon);
    return out;
  }

  /** The chain status, re-verified when records were added and `verifyEveryMs` has passed. */
  async chainStatus(now: number = Date.now()): Promise<ChainStatus> {
    // Records after the last tree head are not signed yet: verify up to it.
    const records = signedPrefix(this.records);
    const last = records.at(-1) as TreeHeadLine | undefined;
    const through = last?.seq ?? null;
    const stale = this.verified === null || this.verified.through !== through;
    const due = now - (this.verified?.at ?? 0) >= (this.options.verifyEveryMs ?? 2000);
    if (stale && due) {
      const trustedKey = this.options.trustedKey ?? firstTreeHeadSigner(records) ?? '';
      const result: VerifyRoundLogResult =
        records.length === 0
          ? { ok: true, records: 0, firstBad: null, problems: [], recomputed: 0 }
          : await verifyRoundLog(records, { trustedKey });
      this.verified = {
        ok: result.ok,
        through,
        firstBad: result.firstBad,
        problems: result.problems.slice(0, 20),
        at: now,
      };
    }
    return {
      records: this.records.length,
      head:
        last && isTreeHeadLine(last)
          ? { seq: last.seq, treeSize: last.treeHead.treeSize, rootHash: last.treeHead.rootHash }
          : null,
      verified: this.verified,
      trustedKeySource: this.options.trustedKey ? 'configured' : 'first-record',
    };
  }
}
