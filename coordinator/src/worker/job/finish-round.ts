// The tail every round shares, whether it aggregated in one stage or in shard jobs: the
// aggregation record, the drift audit, then promotion of version n+1 or rejection, and the
// published decision (publish-decision.ts).
import { FlotillaError, sha256Hex, type TaskDefinition } from '@flotilla/protocol';
import type { AggregateUpdateRef } from '../../shared/queues.js';
import type { RoundOutcome } from '../../shared/round-outcomes.js';
import { redisKeys } from '../../shared/keys.js';
import { promoteAdapter } from '../../shared/promotion/promote-adapter.js';
import { subtractTensors } from '../../shared/promotion/tensor-math.js';
import {
  auditRound,
  type AuditResult,
  type AuditRoundInput,
  type HoldoutMetrics,
  type TensorList,
  type UpdateStats,
} from '../audit/index.js';
import { flattenTensors, type TensorLayout } from '../strategies/flatten.js';
import { byzantineTolerance } from '../strategies/registry.js';
import type { ComputeRoundResult } from './compute-round.js';
import { encodeAggregate } from './aggregate-digest.js';
import { writeWorkerState } from './worker-state.js';
import { chargeRound } from './privacy-charge.js';
import { moduleDriftOf } from './candidate-drift.js';
import { applyTrustRegion } from './trust-region.js';
import { writeNormHistory } from './norm-history.js';
import { writePromotedStep } from './promoted-step.js';
import type { FlagExclusion } from './flag-exclusion.js';
import { screenContext } from './screen-context.js';
import { recordAndPublishDecision } from './publish-decision.js';
import type { RoundContext } from './round-context.js';

export interface FinishRoundInput {
  /** The updates that went into `result`, in aggregation order (sorted by blob digest). */
  loaded: AggregateUpdateRef[];
  /** Why other updates were excluded, for the decision's reasons. */
  exclusions: string[];
  result: ComputeRoundResult;
  /**
   * Per-update audit input: the flattened deltas, or their statistics from a hierarchical round's
   * shard jobs. Not used (and not computed) in a DP task, where updates are not screened one by one.
   */
  perUpdate?:
    | { updates: TensorList[]; layout?: TensorLayout }
    | { stats: { perUpdate: UpdateStats[]; referenceNorm: number; dimension: number } };
  /** Set when the screen ran before the aggregate and left flagged updates out (flag-exclusion.ts). */
  screened?: FlagExclusion | null;
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
  await deps.blobs.put(aggregateDigest, aggregateBytes);

  await deps.roundLog.aggregation({
    task,
    job,
    loaded,
    result,
    aggregateDigest,
    ...(input.hierarchical ? { hierarchical: input.hierarchical } : {}),
    ...(input.screened ? { screenedOut: input.screened.excluded } : {}),
  });
  await deps.afterAggregation?.(job.roundId);

  // The trust region: modules past the drift limit are scaled back onto it before anything is
  // evaluated, so the candidate the audit judges is the one that would be promoted. An audit
  // that is off (plain FedAvg) promotes the aggregate as it is.
  const drift = await moduleDriftOf(deps.blobs, task, result.adapter);
  const { adapter: candidate, scaled } =
    task.policy.audit.enforce === false
      ? { adapter: result.adapter, scaled: [] }
      : applyTrustRegion({ task, adapter: result.adapter, drift, limit: task.policy.audit.maxModuleDrift });
  const holdout = deps.evaluate
    ? { candidate: await deps.evaluate(task, candidate), current: await deps.evaluate(task, current) }
    : undefined;
  const audit: AuditResult = auditRound(
    {
      ...perUpdateInput(task, input),
      labels: loaded.map((u) => u.devicePseudonym),
      ...(input.screened
        ? { findings: input.screened.findings, excludedFlagged: input.screened.excluded.length }
        : await screenContext(ctx, input.perUpdate)),
      tolerance: {
        strategy: task.policy.strategy.name,
        updates: byzantineTolerance(task.policy.strategy, loaded.length),
      },
      aggregate: [flattenTensors(aggregateDelta).values],
      moduleDrift: scaled.length > 0 ? await moduleDriftOf(deps.blobs, task, candidate) : drift,
      trustRegion: scaled,
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
    return recordAndPublishDecision(ctx, {
      decision: 'REJECTED',
      reasons,
      version: null,
      manifestDigest: null,
      // A spent budget: no later candidate could be promoted either.
      ...(audit.terminal
        ? {
            stopTask:
              audit.checks.find((c) => c.code === 'privacy-budget')?.message ?? 'privacy budget spent',
          }
        : {}),
    });

  const promotion = await promoteAdapter({
    task,
    parentVersion: job.parentVersion,
    parentAdapter: current,
    adapter: candidate,
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
  if (audit.summary.normScale) await writeNormHistory(deps.redis, deps.prefix, job, audit.summary.normScale);
  if (!task.policy.dp) await writePromotedStep(deps, job, subtractTensors(candidate, current));
  return recordAndPublishDecision(ctx, {
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
  if (audit.summary.trustRegionScale !== null) metrics.trustRegionScale = audit.summary.trustRegionScale;
  if (holdout?.accuracy !== undefined) metrics.holdoutAccuracy = holdout.accuracy;
  if (holdout?.loss !== undefined) metrics.holdoutLoss = holdout.loss;
  return metrics;
}

/** The audit's per-update input: none in a DP task, where only the noised aggregate may count. */
function perUpdateInput(
  task: TaskDefinition,
  input: FinishRoundInput,
): Pick<AuditRoundInput, 'updates' | 'stats' | 'unscreened'> {
  if (task.policy.dp)
    return {
      unscreened: {
        count: input.loaded.length,
        reason:
          'differential privacy: updates are not screened one by one (each one is bounded by the clip norm); ' +
          'the decision uses only the noised aggregate, the holdout and public information',
      },
    };
  if (!input.perUpdate)
    throw new FlotillaError('INTERNAL', 'a round without DP needs its per-update audit input');
  return input.perUpdate;
}
