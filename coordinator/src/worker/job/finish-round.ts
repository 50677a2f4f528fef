// The tail every round shares, whether it aggregated in one stage or in shard jobs: the
// aggregation record, the drift audit, then promotion of version n+1 or rejection, and the
// published decision.
import { sha256Hex, updateWeight, type TaskDefinition } from '@flotilla/protocol';
import type { AggregateJobData, AggregateUpdateRef } from '../../shared/queues.js';
import { publishRoundOutcome, type RoundOutcome } from '../../shared/round-outcomes.js';
import { redisKeys } from '../../shared/keys.js';
import { promoteAdapter } from '../../shared/promotion/promote-adapter.js';
import { subtractTensors, type TensorMap } from '../../shared/promotion/tensor-math.js';
import {
  auditRound,
  type AuditResult,
  type HoldoutMetrics,
  type TensorList,
  type UpdateSimilarity,
} from '../audit/index.js';
import { flattenTensors } from '../strategies/flatten.js';
import type { AggregateJobDeps } from './process-aggregate-job.js';
import type { ComputeRoundResult } from './compute-round.js';
import { encodeAggregate } from './aggregate-digest.js';
import { writeWorkerState, type TaskWorkerState } from './worker-state.js';
import { chargeRound, spentPrivacy } from './privacy-charge.js';
import { stopTask } from '../../shared/task-stop.js';
import { moduleDriftOf } from './module-drift.js';

/** One round in hand: its job, task, the adapter it started from and the task's worker state. */
export interface RoundContext {
  deps: AggregateJobDeps;
  task: TaskDefinition;
  job: AggregateJobData;
  /** Adapter version `job.parentVersion`. */
  current: TensorMap;
  state: TaskWorkerState;
  /** When the job was enqueued: the same on every retry, so it dates the manifest. */
  enqueuedAt: number;
}

export interface FinishRoundInput {
  /** The updates that went into `result`, in aggregation order (sorted by blob digest). */
  loaded: AggregateUpdateRef[];
  /** Why other updates were excluded, for the decision's reasons. */
  exclusions: string[];
  result: ComputeRoundResult;
  /** Per-update audit input: the flattened deltas, or their cosines from a hierarchical round's shard jobs. */
  perUpdate: { updates: TensorList[] } | { similarities: UpdateSimilarity[] };
  /** Set when the round aggregated in shard jobs: the shard size and each shard's usable updates. */
  hierarchical?: { shardSize: number; counts: number[] };
}

export async function finishRound(ctx: RoundContext, input: FinishRoundInput): Promise<RoundOutcome> {
  const { deps, task, job, current } = ctx;
  const { loaded, result } = input;
  // Normally charged where it was computed; never published uncharged (a no-op once charged).
  await chargeRound(ctx, result);
  const aggregateDelta = subtractTensors(result.adapter, current);
  // The logged aggregate is the strategy's own output where there is one (ffa, fedit), so an
  // auditor can recompute it from the retained deltas (`recomputeAggregateDigest`).
  const aggregateBytes = encodeAggregate(result.lora.step ?? aggregateDelta, job.roundId);
  const aggregateDigest = sha256Hex(aggregateBytes);
  if (!(await deps.blobs.has(aggregateDigest))) await deps.blobs.put(aggregateDigest, aggregateBytes);

  await deps.roundLog.aggregation({
    task,
    job,
    loaded,
    result,
    aggregateDigest,
    ...(input.hierarchical ? { hierarchical: input.hierarchical } : {}),
  });
  await deps.afterAggregation?.(job.roundId);

  const holdout = deps.evaluate
    ? { candidate: await deps.evaluate(task, result.adapter), current: await deps.evaluate(task, current) }
    : undefined;
  const audit: AuditResult = auditRound(
    {
      ...input.perUpdate,
      labels: loaded.map((u) => u.devicePseudonym),
      norms: loaded.map((u) => u.norm),
      weights: loaded.map((u) => updateWeight(task.policy.weighting, u.numExamples)),
      aggregate: [flattenTensors(aggregateDelta).values],
      moduleDrift: await moduleDriftOf(deps.blobs, task, result.adapter),
      ...(holdout ? { holdout } : {}),
      ...(result.privacy && task.policy.dp
        ? {
            privacy: {
              epsilon: result.privacy.epsilon,
              epsilonBudget: task.policy.dp.epsilonBudget,
              delta: result.privacy.delta,
            },
          }
        : {}),
    },
    task.policy.audit,
  );
  await deps.roundLog.audit({ task, job, audit });
  const reasons = [...audit.reasons, ...input.exclusions];
  if (audit.decision === 'reject')
    return decide(ctx, { decision: 'REJECTED', reasons, version: null, manifestDigest: null });

  const promotion = await promoteAdapter({
    task,
    parentVersion: job.parentVersion,
    parentAdapter: current,
    adapter: result.adapter,
    roundId: job.roundId,
    aggregation: { strategy: result.strategy, loraRule: result.lora.rule, participants: loaded.length },
    metrics: metricsOf(result, audit, holdout?.candidate),
    audit: { decision: 'promote', reasons: audit.reasons },
    privacy: result.privacy ? { epsilon: result.privacy.epsilon, delta: result.privacy.delta } : null,
    rollbackOf: null,
    createdAt: ctx.enqueuedAt,
    blobs: deps.blobs,
    registry: deps.adapters,
    signingKey: deps.signingKey,
  });
  if (ctx.state.lastPromotedRound !== job.roundId) {
    await writeWorkerState(deps.redis, deps.prefix, task.taskId, deps.blobs, {
      ...ctx.state,
      optimizer: result.optimizerState,
      lastPromotedRound: job.roundId,
    });
    if (result.privacy && result.privacy.nextClipNorm !== job.clipNorm) {
      await deps.redis.set(redisKeys(deps.prefix).clipNorm(task.taskId), String(result.privacy.nextClipNorm));
    }
  }
  await deps.roundLog.promotion({
    task,
    job,
    signed: promotion.signed,
    manifestDigest: promotion.manifestDigest,
  });
  return decide(ctx, {
    decision: 'COMMITTED',
    reasons,
    version: promotion.signed.manifest.version,
    manifestDigest: promotion.manifestDigest,
  });
}

function metricsOf(
  result: ComputeRoundResult,
  audit: AuditResult,
  holdout: HoldoutMetrics | undefined,
): Record<string, number> {
  const metrics: Record<string, number> = {
    participants: audit.summary.updateCount,
    flagged: audit.summary.flaggedCount,
  };
  if (result.lora.feditRelativeError !== null) metrics.feditRelativeError = result.lora.feditRelativeError;
  if (result.lora.truncationRelativeError !== null)
    metrics.truncationRelativeError = result.lora.truncationRelativeError;
  if (result.privacy) metrics.epsilon = result.privacy.epsilon;
  if (holdout?.accuracy !== undefined) metrics.holdoutAccuracy = holdout.accuracy;
  if (holdout?.loss !== undefined) metrics.holdoutLoss = holdout.loss;
  return metrics;
}

/**
 * Records a rejection (with every reason) and publishes the decision to the server; with
 * `stopTask`, stops the task first.
 */
export async function decide(
  ctx: Pick<RoundContext, 'deps' | 'task' | 'job' | 'state'>,
  options: {
    decision: RoundOutcome['decision'];
    reasons: string[];
    version: number | null;
    manifestDigest: string | null;
    /** Why the task must stop: no round of it opens after this one (shared/task-stop.ts). */
    stopTask?: string;
  },
): Promise<RoundOutcome> {
  const { deps, task, job } = ctx;
  // Stored before the outcome is published: the coordinator reads it when it opens the next round.
  if (options.stopTask !== undefined)
    await stopTask(deps.redis, deps.prefix, task.taskId, {
      reason: options.stopTask,
      roundId: job.roundId,
      at: Date.now(),
    });
  const outcome: RoundOutcome = {
    taskId: task.taskId,
    roundId: job.roundId,
    decision: options.decision,
    version: options.version,
    manifestDigest: options.manifestDigest,
    reasons: options.reasons.length > 0 ? options.reasons : ['all checks passed'],
    privacy: spentPrivacy(ctx),
    ...(options.stopTask !== undefined ? { stopTask: options.stopTask } : {}),
  };
  if (options.decision === 'REJECTED') await deps.roundLog.rejection({ task, job, reasons: outcome.reasons });
  await publishRoundOutcome(deps.redis, deps.prefix, outcome);
  return outcome;
}
