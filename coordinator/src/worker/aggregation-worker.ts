import { join } from 'node:path';
import { FlowProducer, WaitingChildrenError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { FlotillaError, type SigningKeyPair } from '@flotilla/protocol';
import { installNativeEd25519, installNativeSha256 } from '@flotilla/protocol/node';
import { AdapterRegistry } from '../shared/adapter-registry.js';
import { openBlobStore, type BlobStore } from '../shared/blob-store/index.js';
import { loadOrCreateCoordinatorKey } from '../shared/coordinator-key.js';
import { DEFAULT_PREFIX } from '../shared/keys.js';
import { DEFAULT_HIERARCHICAL_THRESHOLD, type HierarchicalOptions } from '../shared/hierarchical-flow.js';
import { AGGREGATE_QUEUE, AggregateJobDataSchema, type AggregateJobData } from '../shared/queues.js';
import { redisOptionsFromUrl } from '../shared/redis-connection.js';
import { publishRoundOutcome, readRoundOutcome, type RoundOutcome } from '../shared/round-outcomes.js';
import { TaskRegistry } from '../shared/task-registry.js';
import { processAggregateJob } from './job/process-aggregate-job.js';
import type { AggregateJobDeps } from './job/round-context.js';
import { ThreadedCompute } from './job/threaded-compute.js';
import { bullmqRoundSteps } from './job/bullmq-round-steps.js';
import { startHierarchicalWorkers } from './hierarchical/hierarchical-workers.js';
import { workerRoundLog, type RoundLogAppender } from './job/worker-round-log.js';
import { jobLockSettings } from './job-locks.js';
import { isNeverRetried, unrecoverable } from './never-retry.js';
import { logFailures } from '../shared/failure-guards.js';

export interface AggregationWorkerOptions {
  redisUrl: string;
  /** Redis key and BullMQ prefix. Default `flotilla`. */
  prefix?: string;
  /** State directory shared with the coordinator (keys, local blobs). */
  stateDir: string;
  /** Must match the coordinator's: a local directory (default `<stateDir>/blobs`) or Redis. */
  blobStore?: { kind: 'local'; dir?: string } | { kind: 'redis' };
  /** Coordinator key that signs manifests. Default: `<stateDir>/keys/coordinator.json`. */
  signingKey?: SigningKeyPair;
  /** Where the worker's round-log records go (the coordinator's signed, hash-chained log). */
  roundLog: RoundLogAppender;
  /** Server-holdout evaluation of a candidate adapter (tfjs), plugged in by the caller. */
  evaluate?: AggregateJobDeps['evaluate'];
  /** Seed for reproducible DP noise (simulations). Default: platform CSPRNG. */
  noiseSeed?: string;
  /** Jobs processed at once. Default 1. */
  concurrency?: number;
  /**
   * Large rounds of strategies that decompose into sums aggregate in shard jobs, which this
   * process also runs (as does every worker process). Thresholds default to 200 updates and
   * shards of 100; `threshold: 0` keeps every round in one stage.
   */
  hierarchical?: HierarchicalOptions;
  /**
   * Shard jobs processed at once by this process. Default `shardMathThreads` + 1: while the
   * threads compute, the event loop loads the next shard's deltas.
   */
  shardConcurrency?: number;
  /**
   * Worker threads for the shard jobs' math (sums, medians, screens); 0 computes on the event loop.
   * Default `DEFAULT_SHARD_MATH_THREADS`: one per core, at most 2.
   */
  shardMathThreads?: number;
  /**
   * Start the shard math threads with the worker, not with the first large round: their module
   * loading (about a second from the TypeScript sources) then never delays a round. A dedicated
   * worker process (`flotilla worker`) does; an embedded one whose rounds stay small need not
   * carry the idle threads. Default false.
   */
  startShardMathThreads?: boolean;
  /** Run the math in a worker thread. Default true. */
  useThread?: boolean;
  logger?: Logger;
  /** Called after each decided round. */
  onOutcome?: (outcome: RoundOutcome) => void;
  /**
   * BullMQ job lock in ms: a worker that dies holding a job loses it after at most this long, and
   * the stalled-job check hands the job to another worker; renewed every half of it.
   * Default 10_000 (`DEFAULT_LOCK_DURATION_MS`, job-locks.ts).
   */
  lockDurationMs?: number;
  /** How often (ms) this worker looks for stalled jobs. Default 5_000 (`DEFAULT_STALLED_INTERVAL_MS`). */
  stalledIntervalMs?: number;
  /**
   * Test only (crash-recovery tests): pause this many ms inside the job, after the aggregation
   * record is written and before the audit, so a test can kill the process mid-job. Default 0.
   */
  testDelayMs?: number;
}

export interface AggregationWorker {
  worker: Worker<AggregateJobData, RoundOutcome>;
  blobs: BlobStore;
  close(): Promise<void>;
}

const MAX_REASON = 2000;

/**
 * A job that will not be tried again still owes the server a decision, or its round would wait in
 * AGGREGATING forever: record and publish REJECTED with the failure as the reason.
 */
async function rejectFailedRound(
  deps: AggregateJobDeps,
  roundLog: RoundLogAppender,
  data: unknown,
  reason: string,
): Promise<void> {
  const parsed = AggregateJobDataSchema.safeParse(data);
  if (!parsed.success) return;
  const { taskId, roundId } = parsed.data;
  if ((await readRoundOutcome(deps.redis, deps.prefix, roundId)) !== null) return;
  const reasons = [reason.length > MAX_REASON ? `${reason.slice(0, MAX_REASON - 1)}…` : reason];
  await roundLog.append({ type: 'rejection', taskId, roundId, reasons });
  await publishRoundOutcome(deps.redis, deps.prefix, {
    taskId,
    roundId,
    decision: 'REJECTED',
    version: null,
    manifestDigest: null,
    reasons,
  });
}

/** Starts a BullMQ worker on the `aggregate` queue. */
export async function startAggregationWorker(options: AggregationWorkerOptions): Promise<AggregationWorker> {
  // node:crypto hashes every loaded delta ~20x faster than @noble/hashes and signs round-log
  // records and manifests ~100x faster than tweetnacl, with byte-identical results.
  installNativeEd25519();
  installNativeSha256();
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const connection = redisOptionsFromUrl(options.redisUrl);
  const redis = new Redis(connection);
  // Reconnects by itself; without a listener each failed attempt prints an unhandled error event.
  redis.on('error', (error: Error) => options.logger?.warn({ err: error.message }, 'redis connection error'));
  const blobs =
    options.blobStore?.kind === 'redis'
      ? openBlobStore({ kind: 'redis', redis, prefix })
      : openBlobStore({ kind: 'local', dir: options.blobStore?.dir ?? join(options.stateDir, 'blobs') });
  const signingKey = options.signingKey ?? loadOrCreateCoordinatorKey(options.stateDir);
  const threaded = options.useThread === false ? null : new ThreadedCompute();
  threaded?.start();
  const deps: AggregateJobDeps = {
    redis,
    prefix,
    blobs,
    tasks: new TaskRegistry({ redis, prefix, signingKey }),
    adapters: new AdapterRegistry({ redis, prefix }),
    signingKey,
    roundLog: workerRoundLog(options.roundLog),
    ...(options.evaluate ? { evaluate: options.evaluate } : {}),
    ...(options.noiseSeed !== undefined ? { noiseSeed: options.noiseSeed } : {}),
    ...(threaded ? { compute: (input, seed) => threaded.run(input, seed) } : {}),
    ...(options.hierarchical ? { hierarchical: options.hierarchical } : {}),
    ...(options.testDelayMs
      ? {
          afterAggregation: async (roundId: string) => {
            options.logger?.warn({ roundId, ms: options.testDelayMs }, 'test delay');
            await new Promise((resolve) => setTimeout(resolve, options.testDelayMs));
          },
        }
      : {}),
  };
  const lockOptions = {
    ...(options.lockDurationMs !== undefined ? { lockDurationMs: options.lockDurationMs } : {}),
    ...(options.stalledIntervalMs !== undefined ? { stalledIntervalMs: options.stalledIntervalMs } : {}),
  };
  const shardWorkers = await startHierarchicalWorkers({
    connection,
    prefix,
    blobs,
    ...lockOptions,
    ...(options.shardConcurrency !== undefined ? { concurrency: options.shardConcurrency } : {}),
    ...(options.shardMathThreads !== undefined ? { mathThreads: options.shardMathThreads } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const hierarchicalThreshold = options.hierarchical?.threshold ?? DEFAULT_HIERARCHICAL_THRESHOLD;
  if (options.startShardMathThreads === true && hierarchicalThreshold > 0) shardWorkers.warmUp();
  // Adds a large round's shard jobs under its aggregate job (see bullmq-round-steps.ts).
  const flows = new FlowProducer({ connection, prefix });
  const worker = new Worker<AggregateJobData, RoundOutcome>(
    AGGREGATE_QUEUE,
    async (job: Job<AggregateJobData, RoundOutcome>, token?: string) => {
      const started = Date.now();
      // A round large enough for shard jobs: their math threads load their modules (about half a
      // second each) now, while this job adds the shards, not once the first shard is loaded.
      const updates: unknown = (job.data as { updates?: unknown }).updates;
      if (hierarchicalThreshold > 0 && Array.isArray(updates) && updates.length >= hierarchicalThreshold)
        shardWorkers.warmUp();
      try {
        const steps = bullmqRoundSteps(job, token, flows);
        const outcome = await processAggregateJob(job.data, deps, job.timestamp, steps);
        options.logger?.info(
          {
            roundId: outcome.roundId,
            decision: outcome.decision,
            version: outcome.version,
            ms: Date.now() - started,
          },
          'round decided',
        );
        options.onOutcome?.(outcome);
        return outcome;
      } catch (error) {
        // Parked until its shard jobs complete: not a failure, BullMQ runs the job again then.
        if (error instanceof WaitingChildrenError) throw error;
        options.logger?.error(
          { roundId: (job.data as { roundId?: string }).roundId, err: error },
          'aggregation failed',
        );
        const neverRetried = isNeverRetried(error);
        if (neverRetried || job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) {
          const code = error instanceof FlotillaError ? error.code : 'INTERNAL';
          const message = error instanceof Error ? error.message : String(error);
          await rejectFailedRound(
            deps,
            options.roundLog,
            job.data,
            `aggregation failed (${code}): ${message}`,
          ).catch((failure: unknown) =>
            options.logger?.error({ err: failure }, 'could not publish the failed round as REJECTED'),
          );
        }
        if (neverRetried) throw unrecoverable(error);
        throw error;
      }
    },
    {
      connection,
      prefix,
      concurrency: options.concurrency ?? 1,
      ...jobLockSettings(options),
    },
  );
  // BullMQ reports lost connections and failed lock renewals as 'error' events.
  worker.on('error', (error: Error) =>
    options.logger?.warn({ err: error.message }, 'aggregate worker error'),
  );
  flows.on('error', (error: Error) => options.logger?.warn({ err: error.message }, 'flow producer error'));
  // A job whose workers died while holding it more often than BullMQ's maxStalledCount (1) is
  // failed without the processor running again, so the processor's own last-attempt path above
  // never publishes its decision: do it here, or the round would wait in AGGREGATING forever.
  // (After that path, the outcome already exists and this does nothing.)
  const onFailed = async (job: Job<AggregateJobData, RoundOutcome> | undefined, error: Error) => {
    if (!job || !(await job.isFailed())) return;
    await rejectFailedRound(deps, options.roundLog, job.data, `aggregation failed: ${error.message}`);
  };
  worker.on(
    'failed',
    logFailures(options.logger ?? { error: () => undefined }, 'failed-job handler', onFailed),
  );
  await worker.waitUntilReady();
  return {
    worker,
    blobs,
    async close() {
      await worker.close();
      await shardWorkers.close();
      await flows.close();
      await threaded?.close();
      redis.disconnect();
    },
  };
}
