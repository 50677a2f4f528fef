import { fromHex, toHex } from '../encoding.js';
import { sameHash } from '../merkle/hash.js';
import { RoundLogRecordSchema, type RoundLogRecord } from './record.js';
import { isTreeHeadLine } from './log-builder.js';
import { addLeaf, checkTreeHead, createTreeCheckState, currentSigner, firstIssue } from './verify-tree.js';
import { checkRoundSemantics, createSemanticState } from './verify-semantics.js';
import type { RoundLogEventOf } from './events.js';
import { dpTaskIds, privacyLedger, type LedgerProblemCode } from '../privacy/ledger.js';

/** Machine-readable problem codes; docs/auditing.md explains each one and what to do. */
export const ROUND_LOG_PROBLEM_CODES = [
  'PARSE',
  'SCHEMA',
  'FORMAT',
  'SEQ',
  'KEY',
  'SIGNATURE',
  'TREE_SIZE',
  'ROOT',
  'CONSISTENCY',
  'UNSIGNED',
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
  /** Position (= expected seq) of the line at fault, record or tree head; null for the whole log. */
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
   * A tree head the auditor obtained independently (one a device was shown, the live API, a
   * published checkpoint): the log must hold at least `treeSize` records whose root is `rootHash`.
   * Without it, a log cut back to an earlier head of its own cannot be told from a shorter log.
   */
  expectedHead?: { treeSize: number; rootHash: string };
}

export interface VerifyRoundLogResult {
  ok: boolean;
  /** Number of lines examined (records and tree heads). */
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

/** A line written by Flotilla before tree heads: every record signed and hash-chained. */
function isFormatOneRecord(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && 'prevHash' in raw && 'signature' in raw;
}

/** Checks schema, sequence, time, the tree heads (signatures, roots, consistency) and round rules. */
function structuralPass(records: readonly unknown[], options: VerifyRoundLogOptions): StructuralPass {
  const problems: RoundLogProblem[] = [];
  const pending: StructuralPass['pending'] = [];
  const add = (seq: number | null, code: RoundLogProblemCode, message: string): void => {
    problems.push({ seq, code, message });
  };
  const semantics = createSemanticState();
  const tree = createTreeCheckState(options.trustedKey);
  const parsedRecords: Array<{ seq: number; event: RoundLogRecord['event'] }> = [];
  let prevTs = 0;

  records.forEach((raw, position) => {
    if (isFormatOneRecord(raw)) {
      if (!problems.some((p) => p.code === 'FORMAT'))
        add(
          position,
          'FORMAT',
          `line ${position} is a format-1 record (signed and hash-chained, no tree heads): verify it with the flotilla release that wrote it (docs/auditing.md, "Logs written before tree heads")`,
        );
      addLeaf(tree, raw, position);
      return;
    }
    if (isTreeHeadLine(raw)) {
      const { problems: headProblems, line } = checkTreeHead(tree, raw, position, prevTs);
      for (const problem of headProblems) add(problem.seq, problem.code, problem.message);
      if (line) prevTs = Math.max(prevTs, line.treeHead.ts);
      return;
    }
    const leafIndex = tree.tree.size;
    addLeaf(tree, raw, position);
    const parsed = RoundLogRecordSchema.safeParse(raw);
    if (!parsed.success) {
      add(
        position,
        'SCHEMA',
        `record ${position} is not a valid round-log record${firstIssue(parsed.error)}`,
      );
      return;
    }
    const record = parsed.data;
    if (record.seq !== position)
      add(
        position,
        'SEQ',
        `record at position ${position} has seq ${record.seq}: a line was deleted, inserted or moved`,
      );
    if (record.leafIndex !== leafIndex)
      add(
        position,
        'SEQ',
        `record ${position} says it is leaf ${record.leafIndex}, but ${leafIndex} records come before it`,
      );
    if (record.ts < prevTs)
      add(position, 'TIME', `record ${position} time ${record.ts} is before the previous line's ${prevTs}`);

    const event = record.event;
    parsedRecords.push({ seq: position, event });
    if (event.type === 'key.rotated') {
      if (event.previousKeyId !== currentSigner(tree))
        add(
          position,
          'ROTATION',
          `key rotation names previous key ${event.previousKeyId}, but the signer in force is ${currentSigner(tree)}`,
        );
      else tree.pendingRotations.push(event.newKeyId);
    }
    for (const problem of checkRoundSemantics(semantics, event)) add(position, problem.code, problem.message);
    if (event.type === 'aggregation' && event.deltasRetainedUntil !== null && options.recompute)
      pending.push({ position, record: { ...record, event } });
    prevTs = Math.max(prevTs, record.ts);
  });

  const unsignedFrom = tree.positionOfLeaf[tree.lastHead.size];
  if (unsignedFrom !== undefined && tree.tree.size > tree.lastHead.size)
    add(
      unsignedFrom,
      'UNSIGNED',
      `${tree.tree.size - tree.lastHead.size} records from position ${unsignedFrom} on are covered by no signed tree head`,
    );

  for (const problem of ledgerProblems(parsedRecords, problems)) problems.push(problem);

  const head = options.expectedHead;
  if (head) {
    const size = tree.tree.size;
    if (head.treeSize > size)
      add(
        records.length,
        'TRUNCATED',
        `the log holds ${size} records but the expected head covers ${head.treeSize}: records were removed from the end`,
      );
    else {
      const root = tree.tree.root(head.treeSize);
      if (!sameHash(root, fromHex(head.rootHash)))
        add(
          tree.positionOfLeaf[Math.max(0, head.treeSize - 1)] ?? 0,
          'TRUNCATED',
          `the log's first ${head.treeSize} records have root ${toHex(root)}, not the expected head's ${head.rootHash}`,
        );
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
