import {
  aggregationWeight,
  maxExamplesPerUpdate,
  type AggregationPrivacy,
  type RoundLogEvent,
  type SignedManifest,
  type TaskDefinition,
} from '@flotilla/protocol';
import type { AggregateJobData, AggregateUpdateRef } from '../../shared/queues.js';
import type { AuditResult, UpdateFinding } from '../audit/index.js';
import { RdpAccountant } from '../privacy/index.js';
import type { ComputeRoundResult } from './compute-round.js';

/** The round-log records the worker writes, one method per record. */
export interface WorkerRoundLog {
  aggregation(entry: {
    task: TaskDefinition;
    job: AggregateJobData;
    loaded: AggregateUpdateRef[];
    result: ComputeRoundResult;
    aggregateDigest: string;
    /** Set when shard jobs summed the updates: shard size, and each shard's usable updates in order. */
    hierarchical?: { shardSize: number; counts: number[] };
    /** Indices into `loaded` of flagged updates left out of the aggregate (`audit.excludeFlagged`). */
    screenedOut?: number[];
  }): Promise<void>;
  audit(entry: { task: TaskDefinition; job: AggregateJobData; audit: AuditResult }): Promise<void>;
  promotion(entry: {
    task: TaskDefinition;
    job: AggregateJobData;
    signed: SignedManifest;
    manifestDigest: string;
  }): Promise<void>;
  rejection(entry: { task: TaskDefinition; job: AggregateJobData; reasons: string[] }): Promise<void>;
}

/** Anything that appends events to the signed, hash-chained round log. */
export interface RoundLogAppender {
  append(event: RoundLogEvent): Promise<unknown>;
}

const MAX_REASON = 2000;
const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);
const clip = (text: string): string =>
  text.length > MAX_REASON ? `${text.slice(0, MAX_REASON - 1)}…` : text;

function privacyOf(result: ComputeRoundResult): { privacy?: AggregationPrivacy } {
  const privacy = privacyRecord(result);
  return privacy ? { privacy } : {};
}

const SEVERITY = { pass: 'info', overridden: 'warn', fail: 'fail' } as const;

type Flag = 'normOutlier' | 'lowCosine' | 'tooCentral' | 'duplicate';
/** Each per-update flag and the finding code it is logged under. */
const FLAGS: ReadonlyArray<{ flag: Flag; code: string }> = [
  { flag: 'normOutlier', code: 'norm-outlier' },
  { flag: 'lowCosine', code: 'low-cosine' },
  { flag: 'tooCentral', code: 'too-central' },
  { flag: 'duplicate', code: 'duplicate' },
];

function flagMessage(flag: Flag, f: UpdateFinding): string {
  switch (flag) {
    case 'normOutlier':
      return `norm ${f.norm.toPrecision(4)} has modified z-score ${f.normZ.toPrecision(3)} within the round`;
    case 'lowCosine':
      return `cosine ${f.cosine.toPrecision(3)} to the round's robust reference has modified z-score ${f.cosineZ.toPrecision(3)}; cosine ${(f.othersCosine ?? Number.NaN).toPrecision(3)} to the other updates' median${f.stepCosine === null ? '' : `, ${f.stepCosine.toPrecision(3)} to the last promoted step`}`;
    case 'tooCentral':
      return `distance ${f.distance.toPrecision(4)} to the round's robust reference has modified z-score ${f.distanceZ.toPrecision(3)}`;
    case 'duplicate':
      return `relative distance ${(f.nearestDistance ?? Number.NaN).toPrecision(3)} to another device's update`;
  }
}

/** The finding's `value`: the score that triggered the flag (the relative distance for a duplicate). */
function flagValue(flag: Flag, f: UpdateFinding): number {
  switch (flag) {
    case 'normOutlier':
      return f.normZ;
    case 'lowCosine':
      return f.cosineZ;
    case 'tooCentral':
      return f.distanceZ;
    case 'duplicate':
      return f.nearestDistance ?? Number.NaN;
  }
}

function auditMetrics(audit: AuditResult): Record<string, number> {
  const { summary } = audit;
  const metrics: Record<string, number> = {
    updates: summary.updateCount,
    flagged: summary.flaggedCount,
    flaggedFraction: summary.flaggedFraction,
  };
  // JSON (and so the signed log) has no Infinity: a drift over an all-zero base is left out.
  const drift = summary.maxModuleDrift?.drift;
  if (drift !== undefined && Number.isFinite(drift)) metrics.maxModuleDrift = drift;
  if (summary.trustRegionScale !== null) metrics.trustRegionScale = summary.trustRegionScale;
  // Absent in a DP task: per-update norms are not published there.
  if (summary.norms) metrics.normMedian = summary.norms.median;
  const holdout = summary.holdout;
  if (holdout && holdout.candidateAccuracy !== null)
    metrics.holdoutAccuracyCandidate = holdout.candidateAccuracy;
  if (holdout && holdout.currentAccuracy !== null) metrics.holdoutAccuracyCurrent = holdout.currentAccuracy;
  if (summary.improvement) {
    metrics.holdoutImprovementPValue = summary.improvement.pValue;
    metrics.holdoutBetterBeyondNoise = summary.improvement.beyondNoise ? 1 : 0;
  }
  return metrics;
}

/** Maps the worker's facts onto round-log events. */
export function workerRoundLog(
  log: RoundLogAppender,
  options: { retainedUntil?: (job: AggregateJobData) => number | null } = {},
): WorkerRoundLog {
  return {
    async aggregation({ task, job, loaded, result, aggregateDigest, hierarchical, screenedOut }) {
      const selected = new Set(result.selected);
      await log.append({
        type: 'aggregation',
        taskId: task.taskId,
        roundId: job.roundId,
        strategy: result.strategy,
        strategyOptions: {
          byzantine: task.policy.strategy.byzantine,
          beta: task.policy.strategy.beta,
          keep: task.policy.strategy.keep ?? null,
          serverLearningRate: task.policy.strategy.serverLearningRate,
          serverMomentum: task.policy.strategy.serverMomentum,
          beta1: task.policy.strategy.beta1,
          beta2: task.policy.strategy.beta2,
          tau: task.policy.strategy.tau,
          normBound: task.policy.strategy.normBound ?? null,
          // How `numExamples` became each participant's weight (DP weighs every update 1).
          weighting: task.policy.dp ? 'equal' : task.policy.weighting.rule,
          weightCap: task.policy.weighting.rule === 'capped' ? task.policy.weighting.cap : null,
          maxExamplesPerUpdate: maxExamplesPerUpdate(task),
          feditRelativeError: result.lora.feditRelativeError,
          truncationRelativeError: result.lora.truncationRelativeError,
          // Float sums depend on how the updates were grouped; the auditor's recompute follows it.
          ...(hierarchical
            ? {
                hierarchicalShards: hierarchical.counts.length,
                hierarchicalShardSize: hierarchical.shardSize,
                hierarchicalShardCounts: hierarchical.counts.join(','),
              }
            : {}),
          // The strategy ran without these participants (weight 0): the recompute leaves them out.
          ...(screenedOut && screenedOut.length > 0 ? { screenedOut: screenedOut.join(',') } : {}),
        },
        loraRule: result.lora.rule,
        participants: loaded.map((ref, i) => ({
          device: ref.devicePseudonym,
          // In a DP round the log names the update by its commitment (docs/privacy.md).
          blobDigest: ref.commitment ?? ref.blobDigest,
          weight:
            selected.size === 0 || selected.has(i) ? aggregationWeight(task.policy, ref.numExamples) : 0,
        })),
        clipNorm: job.clipNorm,
        noiseMultiplier: result.privacy?.noiseMultiplier ?? 0,
        epsilon: result.privacy?.epsilon ?? null,
        delta: result.privacy?.delta ?? null,
        ...privacyOf(result),
        aggregateDigest,
        // A noised aggregate cannot be recomputed: its deltas are not kept for auditors.
        deltasRetainedUntil: result.privacy ? null : (options.retainedUntil?.(job) ?? null),
      });
    },
    async audit({ task, job, audit }) {
      const checks = audit.checks.map((c) => ({
        code: c.code,
        severity: SEVERITY[c.status],
        message: clip(c.message),
        device: null,
        value: null,
      }));
      const flags = audit.findings.flatMap((f) =>
        FLAGS.filter(({ flag }) => f[flag]).map(({ code, flag }) => ({
          code,
          severity: 'warn' as const,
          message: clip(flagMessage(flag, f)),
          device: /^dev_[0-9a-f]{32}$/.test(f.label) ? f.label : null,
          value: finiteOrNull(flagValue(flag, f)),
        })),
      );
      await log.append({
        type: 'audit',
        taskId: task.taskId,
        roundId: job.roundId,
        decision: audit.decision === 'promote' ? 'pass' : 'fail',
        findings: [...checks, ...flags],
        metrics: auditMetrics(audit),
      });
    },
    async promotion({ task, job, signed, manifestDigest }) {
      await log.append({
        type: 'promotion',
        taskId: task.taskId,
        roundId: job.roundId,
        version: signed.manifest.version,
        parentVersion: signed.manifest.parentVersion,
        manifestDigest,
        adapterDigest: signed.manifest.adapter.f32.digest,
      });
    },
    async rejection({ task, job, reasons }) {
      await log.append({
        type: 'rejection',
        taskId: task.taskId,
        roundId: job.roundId,
        reasons: reasons.map(clip),
      });
    },
  };
}

/** The aggregation record's privacy block: what this round released and how it was charged. */
export function privacyRecord(result: ComputeRoundResult): AggregationPrivacy | undefined {
  if (!result.privacy) return undefined;
  const accountant = RdpAccountant.fromJSON(result.privacy.accountant);
  return {
    accountant: 'rdp-gaussian',
    relation: 'zero-out',
    sampling: 'fixed-size',
    amplification: 'none',
    // Finite orders only (JSON has no ∞; an infinite order never gives the smallest ε).
    orders: accountant.orders.filter((order) => Number.isFinite(order)),
    conversion: 'improved',
    releases: result.privacy.releases,
    chargedRounds: accountant.totalSteps,
  };
}
