import { roundNumberOf } from './events.js';
import { RoundLogRecordSchema, type RoundLogRecord } from './record.js';
import { isTreeHeadLine } from './log-builder.js';

/** One round as the log tells it. */
export interface RoundSummary {
  taskId: string;
  roundId: string;
  roundNumber: number;
  status: 'open' | 'closed' | 'abandoned';
  /** Epoch ms of `round.opened`; null for a round abandoned before any plan (no `round.opened`). */
  openedAt: number | null;
  /** Null for a round abandoned before any plan. */
  goalCount: number | null;
  minReports: number;
  /** Null for a round abandoned before any plan. */
  clipNorm: number | null;
  /** Pseudonyms selected. */
  selected: string[];
  /** Accepted updates still in the round (`update.accepted` minus `update.excluded`). */
  accepted: number;
  /** Accepted updates taken out before aggregation (`update.excluded`, e.g. a revoked device). */
  excluded: number;
  /**
   * Per-update totals over the accepted updates: null in a DP round, whose records withhold them
   * (docs/privacy.md).
   */
  clipped: number | null;
  acceptedBytes: number | null;
  acceptedExamples: number | null;
  refusedByReason: Record<string, number>;
  abandonReason: string | null;
  aggregation: {
    strategy: string;
    loraRule: string;
    participants: number;
    noiseMultiplier: number;
    epsilon: number | null;
    delta: number | null;
    aggregateDigest: string;
    deltasRetained: boolean;
  } | null;
  audit: {
    decision: 'pass' | 'fail';
    findings: Array<{ code: string; severity: string; message: string }>;
  } | null;
  outcome: { kind: 'promotion'; version: number } | { kind: 'rejection'; reasons: string[] } | null;
}

export interface RoundLogSummary {
  records: number;
  /** Records that are not valid round-log records (verify says why). */
  invalidRecords: number;
  firstTs: number | null;
  lastTs: number | null;
  rounds: RoundSummary[];
  /** Distinct device pseudonyms that had an update accepted. */
  participants: number;
  epsilonOverTime: Array<{
    seq: number;
    ts: number;
    taskId: string;
    roundId: string;
    epsilon: number;
    delta: number | null;
  }>;
  promotions: Array<{
    seq: number;
    ts: number;
    taskId: string;
    roundId: string;
    version: number;
    manifestDigest: string;
  }>;
  rejections: Array<{ seq: number; ts: number; taskId: string; roundId: string; reasons: string[] }>;
  rollbacks: Array<{
    seq: number;
    ts: number;
    taskId: string;
    version: number;
    rollbackOf: number;
    reason: string;
  }>;
  policyChanges: Array<{
    seq: number;
    ts: number;
    taskId: string | null;
    policyDigest: string;
    reason: string;
  }>;
  keyRotations: Array<{ seq: number; ts: number; previousKeyId: string; newKeyId: string; reason: string }>;
  /** Operators' pauses, resumes, stops and archivals (`task.control`). */
  taskControls: Array<{
    seq: number;
    ts: number;
    taskId: string;
    action: 'pause' | 'resume' | 'stop' | 'archive';
    reason: string;
  }>;
}

export interface SummarizeRoundLogOptions {
  /** Only this round number (of every task); default all rounds. */
  round?: number;
}

function inRound(roundId: string, round: number | undefined): boolean {
  return round === undefined || roundNumberOf(roundId) === round;
}

function emptyRound(taskId: string, roundId: string): RoundSummary {
  return {
    taskId,
    roundId,
    roundNumber: roundNumberOf(roundId),
    status: 'open',
    openedAt: null,
    goalCount: null,
    minReports: 0,
    clipNorm: null,
    selected: [],
    accepted: 0,
    excluded: 0,
    clipped: 0,
    acceptedBytes: 0,
    acceptedExamples: 0,
    refusedByReason: {},
    abandonReason: null,
    aggregation: null,
    audit: null,
    outcome: null,
  };
}

/** Builds an auditor's summary of a log (it does not verify it: run `verifyRoundLog` for that). */
/** A running total that becomes null (withheld) once one record withholds its value. */
function addOrWithheld(total: number | null, value: number | null): number | null {
  return total === null || value === null ? null : total + value;
}

export function summarizeRoundLog(
  records: readonly unknown[],
  options: SummarizeRoundLogOptions = {},
): RoundLogSummary {
  const valid: RoundLogRecord[] = [];
  // Tree heads authenticate records; what happened is in the records alone.
  const lines = records.filter((raw) => !isTreeHeadLine(raw));
  for (const raw of lines) {
    const parsed = RoundLogRecordSchema.safeParse(raw);
    if (parsed.success) valid.push(parsed.data);
  }
  const summary: RoundLogSummary = {
    records: lines.length,
    invalidRecords: lines.length - valid.length,
    firstTs: valid[0]?.ts ?? null,
    lastTs: valid.at(-1)?.ts ?? null,
    rounds: [],
    participants: 0,
    epsilonOverTime: [],
    promotions: [],
    rejections: [],
    rollbacks: [],
    policyChanges: [],
    keyRotations: [],
    taskControls: [],
  };
  const rounds = new Map<string, RoundSummary>();
  const participants = new Set<string>();
  const wanted = options.round;

  for (const { seq, ts, event } of valid) {
    if (event.type === 'key.rotated') {
      summary.keyRotations.push({
        seq,
        ts,
        previousKeyId: event.previousKeyId,
        newKeyId: event.newKeyId,
        reason: event.reason,
      });
      continue;
    }
    if (event.type === 'task.control') {
      summary.taskControls.push({
        seq,
        ts,
        taskId: event.taskId,
        action: event.action,
        reason: event.reason,
      });
      continue;
    }
    if (event.type === 'policy.changed') {
      summary.policyChanges.push({
        seq,
        ts,
        taskId: event.taskId,
        policyDigest: event.policyDigest,
        reason: event.reason,
      });
      continue;
    }
    if (event.type === 'rollback') {
      summary.rollbacks.push({
        seq,
        ts,
        taskId: event.taskId,
        version: event.version,
        rollbackOf: event.rollbackOf,
        reason: event.reason,
      });
      continue;
    }
    if (!inRound(event.roundId, wanted)) continue;
    if (event.type === 'round.opened') {
      rounds.set(event.roundId, {
        ...emptyRound(event.taskId, event.roundId),
        openedAt: ts,
        goalCount: event.goalCount,
        minReports: event.minReports,
        clipNorm: event.clipNorm,
      });
      continue;
    }
    const round = rounds.get(event.roundId);
    switch (event.type) {
      case 'round.selected':
        if (round) round.selected.push(...event.devices);
        break;
      case 'update.accepted':
        participants.add(event.device);
        if (!round) break;
        round.accepted++;
        round.clipped = addOrWithheld(round.clipped, event.clipped === null ? null : Number(event.clipped));
        round.acceptedBytes = addOrWithheld(round.acceptedBytes, event.bytes);
        round.acceptedExamples = addOrWithheld(round.acceptedExamples, event.numExamples);
        break;
      case 'update.refused':
        if (round) round.refusedByReason[event.reason] = (round.refusedByReason[event.reason] ?? 0) + 1;
        break;
      case 'update.excluded':
        if (!round) break;
        round.accepted--;
        round.excluded++;
        break;
      case 'update.refusals':
        // Repeats counted rather than logged one by one: they add to the same totals.
        if (round)
          for (const { reason, count } of event.counts)
            round.refusedByReason[reason] = (round.refusedByReason[reason] ?? 0) + count;
        break;
      case 'round.closed':
        if (round) round.status = 'closed';
        break;
      case 'round.abandoned':
        if (round) {
          round.status = 'abandoned';
          round.abandonReason = event.reason;
        } else
          // Abandoned before any plan was made: the round has no `round.opened`.
          rounds.set(event.roundId, {
            ...emptyRound(event.taskId, event.roundId),
            status: 'abandoned',
            minReports: event.minReports,
            abandonReason: event.reason,
          });
        break;
      case 'aggregation':
        if (event.epsilon !== null)
          summary.epsilonOverTime.push({
            seq,
            ts,
            taskId: event.taskId,
            roundId: event.roundId,
            epsilon: event.epsilon,
            delta: event.delta,
          });
        if (round)
          round.aggregation = {
            strategy: event.strategy,
            loraRule: event.loraRule,
            participants: event.participants.length,
            noiseMultiplier: event.noiseMultiplier,
            epsilon: event.epsilon,
            delta: event.delta,
            aggregateDigest: event.aggregateDigest,
            deltasRetained: event.deltasRetainedUntil !== null,
          };
        break;
      case 'audit':
        if (round)
          round.audit = {
            decision: event.decision,
            findings: event.findings.map(({ code, severity, message }) => ({ code, severity, message })),
          };
        break;
      case 'promotion':
        summary.promotions.push({
          seq,
          ts,
          taskId: event.taskId,
          roundId: event.roundId,
          version: event.version,
          manifestDigest: event.manifestDigest,
        });
        if (round) round.outcome = { kind: 'promotion', version: event.version };
        break;
      case 'rejection':
        summary.rejections.push({
          seq,
          ts,
          taskId: event.taskId,
          roundId: event.roundId,
          reasons: event.reasons,
        });
        if (round) round.outcome = { kind: 'rejection', reasons: event.reasons };
        break;
    }
  }
  summary.rounds = [...rounds.values()];
  summary.participants = participants.size;
  return summary;
}
