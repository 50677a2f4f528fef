import { ROUND_LOG_GENESIS_HASH, RoundLogRecordSchema, type RoundLogRecord } from './record.js';
import { roundLogRecordBody, roundLogRecordHash, verifyRoundLogRecordSignature } from './record.js';
import { checkRoundSemantics, createSemanticState } from './verify-semantics.js';
import type { RoundLogEventOf } from './events.js';
import { dpTaskIds, privacyLedger, type LedgerProblemCode } from '../privacy/ledger.js';

/** Machine-readable problem codes; docs/auditing.md explains each one and what to do. */
export const ROUND_LOG_PROBLEM_CODES = [
  'PARSE',
  'SCHEMA',
  'SEQ',
  'PREV_HASH',
  'HASH',
  'KEY',
  'SIGNATURE',
  'ROTATION',
  'TIME',
  'TRUNCATED',
  'UNKNOWN_ROUND',
  'DUPLICATE_ROUND',
  'ROUND_STATE',
  'CLIP',
  'QUORUM',
  'COUNTS',
  'UNKNOWN_PARTICIPANT',
  'DP_MISSING',
  'PRIVACY',
  'EPSILON',
  'BUDGET',
  'PROMOTION',
  'VERSION',
  'TASK_CONTROL',
  'RECOMPUTE',
] as const;
export type RoundLogProblemCode = (typeof ROUND_LOG_PROBLEM_CODES)[number];

export interface RoundLogProblem {
  /** Position (= expected seq) of the record at fault; null for a problem of the whole log. */
  seq: number | null;
  code: RoundLogProblemCode;
  message: string;
}

export type AggregationRecord = RoundLogRecord & { event: RoundLogEventOf<'aggregation'> };

/**
 * Re-runs an aggregation from its retained participant blobs and returns the digest of the
 * result, or null when the blobs are no longer available (retention expired): that is not a
 * failure, the record is then only checked by signature.
 */
export type RecomputeAggregate = (record: AggregationRecord) => Promise<string | null> | string | null;
export type RecomputeAggregateSync = (record: AggregationRecord) => string | null;

export interface VerifyRoundLogOptions {
  /** The first signer's ed25519 public key (base64) the auditor pins; rotations are followed from it. */
  trustedKey: string;
  /** Called for each aggregation whose deltas were retained (`deltasRetainedUntil` not null). */
  recompute?: RecomputeAggregate;
  /**
   * A head the auditor obtained independently (a published checkpoint, the live API). Without
   * it, removing records from the end of a log cannot be detected: nothing after them points back.
   */
  expectedHead?: { seq: number; hash: string };
}

export interface VerifyRoundLogResult {
  ok: boolean;
  /** Number of records examined. */
  records: number;
  /** Smallest seq with a problem, or null. */
  firstBad: number | null;
  problems: RoundLogProblem[];
  /** Aggregations recomputed from retained deltas whose digest matched. */
  recomputed: number;
}

interface StructuralPass {
  problems: RoundLogProblem[];
  pending: Array<{ position: number; record: AggregationRecord }>;
}

/** Checks schema, chain, signatures (following key rotations), sequence, time and round rules. */
function structuralPass(records: readonly unknown[], options: VerifyRoundLogOptions): StructuralPass {
  const problems: RoundLogProblem[] = [];
  const pending: StructuralPass['pending'] = [];
  const add = (seq: number | null, code: RoundLogProblemCode, message: string): void => {
    problems.push({ seq, code, message });
  };
  const semantics = createSemanticState();
  const parsedRecords: Array<{ seq: number; event: RoundLogRecord['event'] }> = [];
  let expectedKey = options.trustedKey;
  let prevHash: string | null = ROUND_LOG_GENESIS_HASH;
  let prevTs = 0;

  records.forEach((raw, position) => {
    const parsed = RoundLogRecordSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
      add(
        position,
        'SCHEMA',
        `record ${position} is not a valid round-log record${where}: ${issue?.message ?? 'invalid'}`,
      );
      const claimed = typeof raw === 'object' && raw !== null ? (raw as { hash?: unknown }).hash : undefined;
      prevHash = typeof claimed === 'string' ? claimed : null;
      return;
    }
    const record = parsed.data;
    if (record.seq !== position)
      add(
        position,
        'SEQ',
        `record at position ${position} has seq ${record.seq}: a record was deleted, inserted or moved`,
      );
    if (prevHash !== null && record.prevHash !== prevHash)
      add(position, 'PREV_HASH', `record ${position} does not point to the hash of the record before it`);
    const computed = roundLogRecordHash(roundLogRecordBody(record));
    if (computed !== record.hash)
      add(position, 'HASH', `record ${position} content does not match its hash (computed ${computed})`);
    let authentic = false;
    if (record.keyId !== expectedKey) {
      add(position, 'KEY', `record ${position} is signed by ${record.keyId}, expected ${expectedKey}`);
    } else if (!verifyRoundLogRecordSignature(record, expectedKey)) {
      add(position, 'SIGNATURE', `record ${position} has an invalid signature for key ${expectedKey}`);
    } else {
      authentic = true;
    }
    if (record.ts < prevTs)
      add(position, 'TIME', `record ${position} time ${record.ts} is before the previous record's ${prevTs}`);

    const event = record.event;
    parsedRecords.push({ seq: position, event });
    if (event.type === 'key.rotated') {
      if (event.previousKeyId !== expectedKey)
        add(
          position,
          'ROTATION',
          `key rotation names previous key ${event.previousKeyId}, but the signer in force is ${expectedKey}`,
        );
      else if (authentic) expectedKey = event.newKeyId;
    }
    for (const problem of checkRoundSemantics(semantics, event)) add(position, problem.code, problem.message);
    if (event.type === 'aggregation' && event.deltasRetainedUntil !== null && options.recompute)
      pending.push({ position, record: { ...record, event } });

    prevHash = record.hash;
    prevTs = Math.max(prevTs, record.ts);
  });

  for (const problem of ledgerProblems(parsedRecords, problems)) problems.push(problem);

  const head = options.expectedHead;
  if (head) {
    const last = records.length - 1;
    if (head.seq > last)
      add(
        last + 1,
        'TRUNCATED',
        `the log ends at seq ${last} but the expected head is seq ${head.seq}: records were removed from the end`,
      );
    else {
      const atHead: unknown = records[head.seq];
      const hash =
        typeof atHead === 'object' && atHead !== null ? (atHead as { hash?: unknown }).hash : undefined;
      if (hash !== head.hash)
        add(head.seq, 'TRUNCATED', `record ${head.seq} does not have the expected head hash ${head.hash}`);
    }
  }
  return { problems, pending };
}

/** Ledger findings that are round-rule failures, under the verifier's codes. */
const LEDGER_CODES: Partial<Record<LedgerProblemCode, RoundLogProblemCode>> = {
  EPSILON_MISMATCH: 'EPSILON',
  CHARGE_COUNT: 'EPSILON',
  NO_NOISE: 'PRIVACY',
  NOISE_BELOW_POLICY: 'PRIVACY',
  OVER_BUDGET: 'BUDGET',
};

/**
 * ε recomputed from each DP task's own records (`privacyLedger`): a recorded ε or charge count the
 * releases do not give, a release without noise or with less than the round promised, ε past the
 * budget. A log written before aggregations carried their privacy block cannot be recomputed;
 * that alone is not a failure (the round rules still check ε never decreases). A second,
 * different release of one round is already a `ROUND_STATE` failure. A problem the round rules
 * already reported at the same record, under the same code, is not repeated.
 */
function ledgerProblems(
  records: Array<{ seq: number; event: RoundLogRecord['event'] }>,
  reported: readonly RoundLogProblem[],
): RoundLogProblem[] {
  const seen = new Set(reported.map((p) => `${p.seq} ${p.code}`));
  const out: RoundLogProblem[] = [];
  for (const taskId of dpTaskIds(records))
    for (const problem of privacyLedger(records, taskId).problems) {
      const code = LEDGER_CODES[problem.code];
      if (code === undefined || seen.has(`${problem.seq} ${code}`)) continue;
      seen.add(`${problem.seq} ${code}`);
      out.push({ seq: problem.seq, code, message: problem.message });
    }
  return out;
}

function finish(records: number, problems: RoundLogProblem[], recomputed: number): VerifyRoundLogResult {
  problems.sort((a, b) => (a.seq ?? -1) - (b.seq ?? -1));
  const seqs = problems.map((p) => p.seq).filter((s): s is number => s !== null);
  const firstBad = seqs.length > 0 ? Math.min(...seqs) : null;
  return { ok: problems.length === 0, records, firstBad, problems, recomputed };
}

function compareRecomputed(
  position: number,
  record: AggregationRecord,
  digest: string | null,
): RoundLogProblem | null {
  if (digest === null || digest === record.event.aggregateDigest) return null;
  return {
    seq: position,
    code: 'RECOMPUTE',
    message: `aggregation of ${record.event.roundId} recomputed from retained deltas gives ${digest}, the record says ${record.event.aggregateDigest}`,
  };
}

function recomputeFailure(position: number, error: unknown): RoundLogProblem {
  const reason = error instanceof Error ? error.message : String(error);
  return {
    seq: position,
    code: 'RECOMPUTE',
    message: `recomputing aggregation ${position} failed: ${reason}`,
  };
}

/**
 * Verifies a round log, pure and offline: no key other than `trustedKey` is needed. Records
 * are the parsed JSON values in file order (a corrupt line can be passed as null).
 */
export async function verifyRoundLog(
  records: readonly unknown[],
  options: VerifyRoundLogOptions,
): Promise<VerifyRoundLogResult> {
  const { problems, pending } = structuralPass(records, options);
  let recomputed = 0;
  for (const { position, record } of pending) {
    try {
      const digest = await options.recompute?.(record);
      const problem = compareRecomputed(position, record, digest ?? null);
      if (problem) problems.push(problem);
      else if (digest) recomputed++;
    } catch (error) {
      problems.push(recomputeFailure(position, error));
    }
  }
  return finish(records.length, problems, recomputed);
}

/** `verifyRoundLog` for a synchronous (or absent) recompute callback. */
export function verifyRoundLogSync(
  records: readonly unknown[],
  options: Omit<VerifyRoundLogOptions, 'recompute'> & { recompute?: RecomputeAggregateSync },
): VerifyRoundLogResult {
  const { problems, pending } = structuralPass(records, options);
  let recomputed = 0;
  for (const { position, record } of pending) {
    try {
      const digest = options.recompute?.(record) ?? null;
      const problem = compareRecomputed(position, record, digest);
      if (problem) problems.push(problem);
      else if (digest) recomputed++;
    } catch (error) {
      problems.push(recomputeFailure(position, error));
    }
  }
  return finish(records.length, problems, recomputed);
}
