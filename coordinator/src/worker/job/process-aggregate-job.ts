import type { Redis } from 'ioredis';
import { AggregateJobDataSchema, type AggregateJobData } from '../../shared/queues.js';
import {
  FlotillaError,
  decodeFloat32Tensors,
  initialAdapterTensors,
  sha256Hex,
  type SigningKeyPair,
  type TaskDefinition,
} from '@flotilla/protocol';
import type { AdapterRegistry } from '../../shared/adapter-registry.js';
import type { BlobStore } from '../../shared/blob-store/index.js';
import { publishRoundOutcome, readRoundOutcome, type RoundOutcome } from '../../shared/round-outcomes.js';
import type { TaskRegistry } from '../../shared/task-registry.js';
import { redisKeys } from '../../shared/keys.js';
import { auditRound, type AuditResult, type HoldoutMetrics } from '../audit/index.js';
import { createCryptoRng, createSeededRng } from '../privacy/index.js';
import { flattenTensors } from '../strategies/flatten.js';
import { promoteAdapter } from '../../shared/promotion/promote-adapter.js';
import { subtractTensors, type TensorMap } from '../../shared/promotion/tensor-math.js';
import { computeRound, type ComputeRoundInput, type ComputeRoundResult } from './compute-round.js';
import { loadUpdates } from './load-updates.js';
import { encodeAggregate } from './aggregate-digest.js';
import { readWorkerState, writeWorkerState } from './worker-state.js';
import type { WorkerRoundLog } from './worker-round-log.js';
import { moduleDriftOf } from './module-drift.js';

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
 * Retries are safe: the candidate of a round is computed once and stored; promotion is
 * idempotent per version; privacy is charged once per round.
 */
export async function processAggregateJob(
  rawData: unknown,
  deps: AggregateJobDeps,
  /** When the job was enqueued (BullMQ's job.timestamp): the same on every retry, so it dates the manifest. */
  enqueuedAt: number,
): Promise<RoundOutcome> {
  const parsed = AggregateJobDataSchema.safeParse(rawData);
  if (!parsed.success)
    throw new FlotillaError('BAD_REQUEST', `malformed aggregate job: ${parsed.error.message}`);
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

  const parentVersion = job.parentVersion;
  const current = await currentAdapter(deps, task, parentVersion);
  const frozen = new Set(
    task.adapter.mode === 'ffa-lora' ? [...current.keys()].filter((n) => n.endsWith('.lora_A.weight')) : [],
  );
  const loadedUnsorted = await loadUpdates({
    refs: job.updates,
    blobs: deps.blobs,
    expected: current,
    frozen,
  });
  // Arrival order varies from run to run; sorting by content makes float sums reproducible.
  const loaded = [...loadedUnsorted.loaded].sort((a, b) =>
    a.ref.blobDigest < b.ref.blobDigest ? -1 : a.ref.blobDigest > b.ref.blobDigest ? 1 : 0,
  );
  const excluded = loadedUnsorted.excluded;
  const state = await readWorkerState(deps.redis, deps.prefix, task.taskId, deps.blobs);
  const reasons = excluded.map((e) => `update ${e.ref.updateId} excluded (${e.code}): ${e.reason}`);

  if (loaded.length < task.rounds.minReports) {
    reasons.unshift(`only ${loaded.length} usable update(s), quorum is ${task.rounds.minReports}`);
    return decide(deps, { task, job, decision: 'REJECTED', reasons, version: null, manifestDigest: null });
  }

  const input: Omit<ComputeRoundInput, 'rng'> = {
    task,
    current,
    updates: loaded.map((u) => ({
      delta: u.delta,
      numExamples: u.ref.numExamples,
      norm: u.ref.norm,
      clipped: u.ref.clipped,
    })),
    clipNorm: job.clipNorm,
    optimizerState: state.optimizer,
    accountant: state.accountant,
  };
  const seed = deps.noiseSeed !== undefined ? `${deps.noiseSeed}:${job.roundId}` : null;
  const result = deps.compute
    ? await deps.compute(input, seed)
    : computeRound({ ...input, rng: seed === null ? createCryptoRng() : createSeededRng(seed) });
  const aggregateDelta = subtractTensors(result.adapter, current);
  // The logged aggregate is the strategy's own output where there is one (ffa, fedit), so an
  // auditor can recompute it bit for bit from the retained deltas (`aggregateDigestOf`).
  const aggregateBytes = encodeAggregate(result.lora.step ?? aggregateDelta, job.roundId);
  const aggregateDigest = sha256Hex(aggregateBytes);
  if (!(await deps.blobs.has(aggregateDigest))) await deps.blobs.put(aggregateDigest, aggregateBytes);

  await deps.roundLog.aggregation({ task, job, loaded: loaded.map((u) => u.ref), result, aggregateDigest });
  await deps.afterAggregation?.(job.roundId);

  const holdout = deps.evaluate
    ? { candidate: await deps.evaluate(task, result.adapter), current: await deps.evaluate(task, current) }
    : undefined;
  const audit: AuditResult = auditRound(
    {
      updates: loaded.map((u) => [flattenTensors(u.delta).values]),
      labels: loaded.map((u) => u.ref.devicePseudonym),
      norms: loaded.map((u) => u.ref.norm),
      weights: loaded.map((u) => u.ref.numExamples),
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

  if (audit.decision === 'reject') {
    return decide(deps, {
      task,
      job,
      decision: 'REJECTED',
      reasons: [...audit.reasons, ...reasons],
      version: null,
      manifestDigest: null,
    });
  }

  const promotion = await promoteAdapter({
    task,
    parentVersion,
    parentAdapter: current,
    adapter: result.adapter,
    roundId: job.roundId,
    aggregation: { strategy: result.strategy, loraRule: result.lora.rule, participants: loaded.length },
    metrics: metricsOf(result, audit, holdout?.candidate),
    audit: { decision: 'promote', reasons: audit.reasons },
    privacy: result.privacy ? { epsilon: result.privacy.epsilon, delta: result.privacy.delta } : null,
    rollbackOf: null,
    createdAt: enqueuedAt,
    blobs: deps.blobs,
    registry: deps.adapters,
    signingKey: deps.signingKey,
  });
  if (state.lastChargedRound !== job.roundId) {
    await writeWorkerState(deps.redis, deps.prefix, task.taskId, deps.blobs, {
      accountant: result.privacy?.accountant ?? state.accountant,
      optimizer: result.optimizerState,
      lastChargedRound: job.roundId,
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
  return decide(deps, {
    task,
    job,
    decision: 'COMMITTED',
    reasons: [...audit.reasons, ...reasons],
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

async function decide(
  deps: AggregateJobDeps,
  options: {
    task: TaskDefinition;
    job: AggregateJobData;
    decision: RoundOutcome['decision'];
    reasons: string[];
    version: number | null;
    manifestDigest: string | null;
  },
): Promise<RoundOutcome> {
  const outcome: RoundOutcome = {
    taskId: options.task.taskId,
    roundId: options.job.roundId,
    decision: options.decision,
    version: options.version,
    manifestDigest: options.manifestDigest,
    reasons: options.reasons.length > 0 ? options.reasons : ['all checks passed'],
  };
  if (options.decision === 'REJECTED')
    await deps.roundLog.rejection({ task: options.task, job: options.job, reasons: outcome.reasons });
  await publishRoundOutcome(deps.redis, deps.prefix, outcome);
  return outcome;
}
