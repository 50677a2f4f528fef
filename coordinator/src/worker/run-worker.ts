import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { loadOrCreateCoordinatorKey } from '../shared/coordinator-key.js';
import {
  DEFAULT_HIERARCHICAL_THRESHOLD,
  DEFAULT_SHARD_SIZE,
  SHARD_STATS_QUEUE,
  SHARD_SUM_QUEUE,
} from '../shared/hierarchical-flow.js';
import { AGGREGATE_QUEUE } from '../shared/queues.js';
import { installProcessGuard } from '../shared/failure-guards.js';
import { redisOptionsFromUrl } from '../shared/redis-connection.js';
import {
  defaultRoundLogPath,
  loadOrCreatePseudonymSecret,
  openRoundLog,
  signTailOnStart,
} from '../shared/round-log/index.js';
import { startAggregationWorker, type AggregationWorker } from './aggregation-worker.js';
import { DEFAULT_SHARD_MATH_THREADS } from './hierarchical/hierarchical-workers.js';
import type { WorkerConfig } from './worker-config.js';

export interface RunningWorker {
  worker: AggregationWorker;
  logger: Logger;
  /** Finishes the job in hand, then closes every connection. */
  stop(): Promise<void>;
}

/**
 * A worker process's setup: the coordinator's key and pseudonym secret from the shared state
 * directory, the signed round log, and the BullMQ worker. Used by `main.ts` and `flotilla worker`.
 */
export async function runWorker(config: WorkerConfig, logger?: Logger): Promise<RunningWorker> {
  const log = logger ?? pino({ level: config.logLevel, base: { proc: 'worker', pid: process.pid } });
  const stateDir = resolve(config.stateDir);
  // Same state directory as the coordinator: the same key signs manifests and round-log records,
  // and the same secret pseudonymizes devices.
  const signingKey = loadOrCreateCoordinatorKey(stateDir);
  const pseudonymSecret = await loadOrCreatePseudonymSecret(stateDir);
  const logRedis = new Redis(redisOptionsFromUrl(config.redisUrl));
  logRedis.on('error', (error: Error) => log.warn({ err: error.message }, 'redis connection error'));
  const roundLog = openRoundLog({
    redis: logRedis,
    prefix: config.prefix,
    filePath: defaultRoundLogPath(stateDir),
    signingKey,
    pseudonymSecret,
    onMirrorError: (error) => log.warn({ err: error }, 'round-log mirror not updated'),
    onLaggingMirror: (lagging) => log.warn(lagging, 'a round-log mirror stopped and keeps lines in Redis'),
    ...(config.roundLogKeepLines !== undefined ? { keepLines: config.roundLogKeepLines } : {}),
    ...(config.retainDeltasHours !== undefined
      ? { retainDeltas: { ttlMs: Math.round(config.retainDeltasHours * 3_600_000) } }
      : {}),
  });
  // Records a killed writer left unsigned are covered by a head before this process goes on.
  await signTailOnStart(roundLog, log);
  const worker = await startAggregationWorker({
    redisUrl: config.redisUrl,
    prefix: config.prefix,
    stateDir,
    blobStore: config.blobStore === 'redis' ? { kind: 'redis' } : { kind: 'local' },
    signingKey,
    roundLog,
    logger: log,
    ...(config.noiseSeed !== undefined ? { noiseSeed: config.noiseSeed } : {}),
    ...(config.concurrency !== undefined ? { concurrency: config.concurrency } : {}),
    hierarchical: {
      ...(config.hierarchicalThreshold !== undefined ? { threshold: config.hierarchicalThreshold } : {}),
      ...(config.shardSize !== undefined ? { shardSize: config.shardSize } : {}),
    },
    ...(config.shardMathThreads !== undefined ? { shardMathThreads: config.shardMathThreads } : {}),
    // A dedicated worker process: its threads load with it, not at the first large round.
    startShardMathThreads: true,
    ...(config.lockDurationMs !== undefined ? { lockDurationMs: config.lockDurationMs } : {}),
    ...(config.stalledIntervalMs !== undefined ? { stalledIntervalMs: config.stalledIntervalMs } : {}),
    ...(config.testDelayMs ? { testDelayMs: config.testDelayMs } : {}),
  });
  // Once running, the worker logs what escapes its handlers and keeps running (failure-guards.ts).
  const guard = installProcessGuard({ logger: log });
  worker.worker.on('failed', (job, error) =>
    log.error({ jobId: job?.id, err: error }, 'aggregate job failed'),
  );
  log.info(
    {
      prefix: config.prefix,
      stateDir,
      blobStore: config.blobStore,
      hierarchicalThreshold: config.hierarchicalThreshold ?? DEFAULT_HIERARCHICAL_THRESHOLD,
      shardSize: config.shardSize ?? DEFAULT_SHARD_SIZE,
      shardMathThreads: config.shardMathThreads ?? DEFAULT_SHARD_MATH_THREADS,
      queues: [AGGREGATE_QUEUE, SHARD_SUM_QUEUE, SHARD_STATS_QUEUE],
    },
    'worker ready',
  );
  return {
    worker,
    logger: log,
    async stop() {
      await worker.close();
      await logRedis.quit();
      guard.uninstall();
    },
  };
}
