#!/usr/bin/env node
// Worker process entry (`flotilla-worker` of the built package; from the sources: `node
// --conditions=@flotilla/source --import tsx coordinator/src/worker/main.ts`), configured by the
// environment (see worker-config.ts): REDIS_URL (required), FLOTILLA_PREFIX, FLOTILLA_STATE_DIR,
// FLOTILLA_BLOB_STORE, LOG_LEVEL, FLOTILLA_NOISE_SEED, FLOTILLA_LOCK_DURATION_MS,
// FLOTILLA_STALLED_INTERVAL_MS, FLOTILLA_WORKER_CONCURRENCY, FLOTILLA_HIERARCHICAL_THRESHOLD,
// FLOTILLA_SHARD_SIZE, FLOTILLA_SHARD_MATH_THREADS and, for tests only,
// FLOTILLA_TEST_DELAY_MS. SIGTERM/SIGINT finish the job in hand, then exit 0.
import { FlotillaError } from '@flotilla/protocol';
import { runWorker } from './run-worker.js';
import { readWorkerConfig, type WorkerConfig } from './worker-config.js';

let config: WorkerConfig;
try {
  config = readWorkerConfig(process.env);
} catch (error) {
  const message = error instanceof FlotillaError ? error.message : String(error);
  process.stderr.write(`flotilla worker: ${message}\n`);
  process.exit(2);
}

const running = await runWorker(config);
const { logger } = running;

let stopping = false;
const shutdown = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'worker stopping: finishing the job in hand');
  running.stop().then(
    () => {
      logger.info('worker stopped');
      process.exit(0);
    },
    (error: unknown) => {
      logger.error({ err: error }, 'worker did not stop cleanly');
      process.exit(1);
    },
  );
};
process.once('SIGINT', () => shutdown('SIGINT'));
process.once('SIGTERM', () => shutdown('SIGTERM'));
