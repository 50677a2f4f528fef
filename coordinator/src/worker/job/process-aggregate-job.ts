// The `aggregate` job's entry: parse the job, load the task, the adapter the round started from and
// the task's worker state, then hand the round to the single-stage or the hierarchical path.
import { AggregateJobDataSchema, type AggregateJobData } from '../../shared/queues.js';
import {
  FlotillaError,
  decodeFloat32Tensors,
  initialAdapterTensors,
  type TaskDefinition,
} from '@flotilla/protocol';
import { shouldAggregateHierarchically } from '../../shared/hierarchical-flow.js';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import { publishRoundOutcome, readRoundOutcome, type RoundOutcome } from '../../shared/round-outcomes.js';
import { runHierarchicalRound } from './hierarchical-round.js';
import type { AggregateJobDeps, RoundContext } from './round-context.js';
import type { RoundJobSteps } from './round-steps.js';
import { runSingleStageRound } from './single-stage-round.js';
import { readWorkerState } from './worker-state.js';

async function currentAdapter(
  deps: AggregateJobDeps,
  task: TaskDefinition,
  version: number,
): Promise<TensorMap> {
  if (version === 0) {
    if (!task.moduleShapes) throw new FlotillaError('BAD_REQUEST', `task ${task.taskId} has no moduleShapes`);
    return initialAdapterTensors(task.adapter, task.moduleShapes);
  }
  const signed = await deps.adapters.getManifest(task.taskId, version);
  if (!signed)
    throw new FlotillaError('NOT_FOUND', `adapter version ${version} of ${task.taskId} is not promoted`);
  const bytes = await deps.blobs.get(signed.manifest.adapter.f32.digest);
  if (!bytes) throw new FlotillaError('BLOB_MISSING', `adapter blob of version ${version} is missing`);
  return decodeFloat32Tensors(bytes).tensors;
}

/**
 * One `aggregate` job: load the round's updates (excluding bad ones with reasons), aggregate
 * under the task's strategy, LoRA rule and DP policy, audit, then promote version n+1 or reject.
 * With `steps` (the BullMQ job) and a large round whose strategy decomposes into sums, the
 * updates are summed and audited by shard jobs instead (see hierarchical-round.ts).
 * Retries are safe: promotion is idempotent per version; a DP round's noised aggregate is computed,
 * stored and charged once, before anything about it is published (privacy-charge.ts).
 */
export async function processAggregateJob(
  rawData: unknown,
  deps: AggregateJobDeps,
  /** When the job was enqueued (BullMQ's job.timestamp): the same on every retry, so it dates the manifest. */
  enqueuedAt: number,
  steps?: RoundJobSteps,
): Promise<RoundOutcome> {
  const parsed = AggregateJobDataSchema.safeParse(rawData);
  if (!parsed.success)
    throw new FlotillaError('INTERNAL', `malformed aggregate job: ${parsed.error.message}`);
  const job: AggregateJobData = parsed.data;
  const signedTask = await deps.tasks.getTask(job.taskId);
  if (!signedTask) throw new FlotillaError('NOT_FOUND', `unknown task ${job.taskId}`);
  const task = signedTask.task;

  const existing = await readRoundOutcome(deps.redis, deps.prefix, job.roundId);
  if (existing !== null) {
    // A retry after the decision was stored: publish it again (the server handles duplicates).
    await publishRoundOutcome(deps.redis, deps.prefix, existing);
    return existing;
  }

  const ctx: RoundContext = {
    deps,
    task,
    job,
    current: await currentAdapter(deps, task, job.parentVersion),
    state: await readWorkerState(deps.redis, deps.prefix, task.taskId, deps.blobs),
    enqueuedAt,
  };
  // A job that already started in shard jobs finishes that way, whatever this worker's threshold.
  if (
    steps &&
    (steps.progress !== null ||
      shouldAggregateHierarchically({
        strategy: task.policy.strategy,
        updateCount: job.updates.length,
        excludeFlagged: task.policy.audit.excludeFlagged === true,
        ...(deps.hierarchical ? { hierarchical: deps.hierarchical } : {}),
      }))
  )
    return runHierarchicalRound(ctx, steps);
  return runSingleStageRound(ctx);
}
