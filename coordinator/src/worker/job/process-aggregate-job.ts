import type { Redis } from 'ioredis';
import { AggregateJobDataSchema, type AggregateJobData } from '../../shared/queues.js';
import {
  FlotillaError,
  decodeFloat32Tensors,
  initialAdapterTensors,
  type SigningKeyPair,
  type TaskDefinition,
} from '@flotilla/protocol';
import type { AdapterRegistry } from '../../shared/adapter-registry.js';
import type { BlobStore } from '../../shared/blob-store/index.js';
import { shouldAggregateHierarchically, type HierarchicalOptions } from '../../shared/hierarchical-flow.js';
import { publishRoundOutcome, readRoundOutcome, type RoundOutcome } from '../../shared/round-outcomes.js';
import type { TaskRegistry } from '../../shared/task-registry.js';
import type { HoldoutMetrics } from '../audit/index.js';
import { flattenTensors } from '../strategies/flatten.js';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import type { ComputeRoundInput, ComputeRoundResult } from './compute-round.js';
import { frozenTensors, runCompute } from './round-inputs.js';
import { loadUpdates } from './load-updates.js';
import { readWorkerState } from './worker-state.js';
import type { WorkerRoundLog } from './worker-round-log.js';
import { decide, finishRound, type RoundContext } from './finish-round.js';
import { budgetRefusal, computeOnceAndCharge, refuseOverBudget } from './privacy-charge.js';
import { runHierarchicalRound, type RoundJobSteps } from './hierarchical-round.js';

/** What the job processor needs; the BullMQ wrapper builds it once per worker process. */
export interface AggregateJobDeps {
  redis: Redis;
  prefix: string;
  blobs: BlobStore;
  tasks: TaskRegistry;
  adapters: AdapterRegistry;
  signingKey: SigningKeyPair;
  roundLog: WorkerRoundLog;
  /** Evaluates an adapter on a server holdout (tfjs, plugged in by the caller); optional. */
  evaluate?: (task: TaskDefinition, adapter: TensorMap) => Promise<HoldoutMetrics>;
  /** Seed for DP noise (simulations, tests). Without it noise comes from the platform CSPRNG. */
  noiseSeed?: string;
  /** Runs the math off the event loop (a worker thread); defaults to in-process. */
  compute?: (input: Omit<ComputeRoundInput, 'rng'>, seed: string | null) => Promise<ComputeRoundResult>;
  /** Test hook (crash-recovery tests): awaited after the aggregation record, before the audit. */
  afterAggregation?: (roundId: string) => Promise<void>;
  /** When rounds aggregate in shard jobs (only with `steps`; see shared/hierarchical-flow.ts). */
  hierarchical?: HierarchicalOptions;
}

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
        ...(deps.hierarchical ? { hierarchical: deps.hierarchical } : {}),
      }))
  )
    return runHierarchicalRound(ctx, steps);
  return runSingleStageRound(ctx);
}

async function runSingleStageRound(ctx: RoundContext): Promise<RoundOutcome> {
  const { deps, task, job, current } = ctx;
  const loadedUnsorted = await loadUpdates({
    refs: job.updates,
    blobs: deps.blobs,
    expected: current,
    frozen: frozenTensors(task, current),
  });
  // Arrival order varies from run to run; sorting by content makes float sums reproducible.
  const loaded = [...loadedUnsorted.loaded].sort((a, b) =>
    a.ref.blobDigest < b.ref.blobDigest ? -1 : a.ref.blobDigest > b.ref.blobDigest ? 1 : 0,
  );
  const exclusions = loadedUnsorted.excluded.map(
    (e) => `update ${e.ref.updateId} excluded (${e.code}): ${e.reason}`,
  );
  if (loaded.length < task.rounds.minReports) {
    const reasons = [
      `only ${loaded.length} usable update(s), quorum is ${task.rounds.minReports}`,
      ...exclusions,
    ];
    return decide(ctx, { decision: 'REJECTED', reasons, version: null, manifestDigest: null });
  }
  const refusal = budgetRefusal(ctx);
  if (refusal !== null) return refuseOverBudget(ctx, refusal, exclusions);
  const result = await computeOnceAndCharge(ctx, () =>
    runCompute(deps, job.roundId, {
      task,
      current,
      updates: loaded.map((u) => ({
        delta: u.delta,
        numExamples: u.ref.numExamples,
        norm: u.ref.norm,
        clipped: u.ref.clipped,
      })),
      clipNorm: job.clipNorm,
      optimizerState: ctx.state.optimizer,
      accountant: ctx.state.accountant,
    }),
  );
  return finishRound(ctx, {
    loaded: loaded.map((u) => u.ref),
    exclusions,
    result,
    perUpdate: { updates: loaded.map((u) => [flattenTensors(u.delta).values]) },
  });
}
