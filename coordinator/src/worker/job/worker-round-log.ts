import {
  aggregationWeight,
  maxExamplesPerUpdate,
  type AggregationPrivacy,
  type RoundLogEvent,
  type SignedManifest,
  type TaskDefinition,
} from '@flotilla/protocol';
import type { AggregateJobData, AggregateUpdateRef } from '../../shared/queues.js';
import type { AuditResult } from '../audit/index.js';
import type { ComputeRoundResult } from './compute-round.js';
import { privacyRecord } from './privacy-charge.js';

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

/** Maps the worker's facts onto round-log events. */
export function workerRoundLog(
  log: RoundLogAppender,
  options: { retainedUntil?: (job: AggregateJobData) => number | null } = {},
): WorkerRoundLog {
  return {
    async aggregation({ task, job, loaded, result, aggregateDigest, hierarchical }) {
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
        },
        loraRule: result.lora.rule,
        participants: loaded.map((ref, i) => ({
          device: ref.devicePseudonym,
          blobDigest: ref.blobDigest,
          weight:
            selected.size === 0 || selected.has(i) ? aggregationWeight(task.policy, ref.numExamples) : 0,
        })),
        clipNorm: job.clipNorm,
        noiseMultiplier: result.privacy?.noiseMultiplier ?? 0,
        epsilon: result.privacy?.epsilon ?? null,
        delta: result.privacy?.delta ?? null,
        ...privacyOf(result),
        aggregateDigest,
        deltasRetainedUntil: options.retainedUntil?.(job) ?? null,
      });
    },
    async audit({ task, job, audit }) {
      const findings = audit.findings
        .filter((f) => f.normOutlier || f.lowCosine)
        .map((f) => ({
          code: f.normOutlier ? 'norm-outlier' : 'low-cosine',
          severity: 'warn' as const,
          message: clip(
            f.normOutlier
              ? `norm ${f.norm.toPrecision(4)} has modified z-score ${f.modifiedZ.toPrecision(3)}`
              : `cosine ${(f.leaveOneOutCosine ?? f.cosine).toPrecision(3)} to ${f.leaveOneOutCosine === null ? 'the aggregate' : 'the other updates'} is below the threshold`,
          ),
          device: /^dev_[0-9a-f]{32}$/.test(f.label) ? f.label : null,
          value: finiteOrNull(f.normOutlier ? f.modifiedZ : (f.leaveOneOutCosine ?? f.cosine)),
        }));
      const reasons = audit.reasons.map((reason) => ({
        code: audit.decision === 'reject' ? 'decision' : 'check',
        severity: audit.decision === 'reject' ? ('fail' as const) : ('info' as const),
        message: clip(reason),
        device: null,
        value: null,
      }));
      const metrics: Record<string, number> = {
        updates: audit.summary.updateCount,
        flagged: audit.summary.flaggedCount,
        flaggedFraction: audit.summary.flaggedFraction,
      };
      // JSON (and so the signed log) has no Infinity: a drift over an all-zero base is left out.
      const drift = audit.summary.maxModuleDrift?.drift;
      if (drift !== undefined && Number.isFinite(drift)) metrics.maxModuleDrift = drift;
      if (audit.summary.norms) metrics.normMedian = audit.summary.norms.median;
      await log.append({
        type: 'audit',
        taskId: task.taskId,
        roundId: job.roundId,
        decision: audit.decision === 'promote' ? 'pass' : 'fail',
        findings: [...reasons, ...findings],
        metrics,
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
