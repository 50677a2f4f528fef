import type { RoundPlan, TaskDefinition } from '@flotilla/protocol';
import { AGGREGATE_JOB_RETENTION, aggregateJobId } from '../shared/queues.js';
import { buildAggregateJob, buildRoundPlan } from './round-plan-builder.js';
import type { RoundManagerDeps } from './round-manager-deps.js';
import type { RoundRecord } from './round-store.js';

// What the round hands on as it moves: to the selected devices its plan (CONFIGURING ->
// REPORTING), to the worker its aggregation job (REPORTING -> AGGREGATING). The worker's answer
// comes back through round-decision.ts.

/** The plan of `round`: from the task's latest adapter and the worker's adaptive clip norm, if any. */
export async function planRound(
  deps: Pick<RoundManagerDeps, 'adapters' | 'redis' | 'keys'>,
  round: RoundRecord,
  task: TaskDefinition,
): Promise<RoundPlan> {
  const version = await deps.adapters.latestVersion(task.taskId);
  const manifest = version > 0 ? await deps.adapters.getManifest(task.taskId, version) : null;
  const clipOverride = await deps.redis.get(deps.keys.clipNorm(task.taskId));
  return buildRoundPlan({
    round,
    task,
    version,
    adapterDigest: manifest?.manifest.adapter.f32.digest ?? null,
    clipOverride,
  });
}

/**
 * Enqueues the aggregation job of a round that closed for aggregation, with every update it
 * stored. Idempotent: the job id is deterministic, so a takeover may enqueue it again.
 */
export async function enqueueAggregation(
  deps: Pick<RoundManagerDeps, 'rounds' | 'queue' | 'logger'>,
  round: RoundRecord,
): Promise<void> {
  const data = buildAggregateJob(round, Object.values(await deps.rounds.updates(round.roundId)));
  // Transient failures (a Redis blip, a slow disk) are retried; the worker publishes REJECTED after the last attempt.
  await deps.queue.add('aggregate', data, {
    jobId: aggregateJobId(round.roundId),
    attempts: 5,
    backoff: { type: 'exponential', delay: 1000 },
    ...AGGREGATE_JOB_RETENTION,
  });
  deps.logger
    .child({ roundId: round.roundId })
    .info({ updates: data.updates.length }, 'round closed (AGGREGATING); aggregation job enqueued');
}
