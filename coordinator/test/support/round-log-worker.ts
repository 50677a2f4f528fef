import type { Redis } from 'ioredis';
import { loadOrCreateCoordinatorKey } from '../../src/shared/coordinator-key.js';
import {
  defaultRoundLogPath,
  loadOrCreatePseudonymSecret,
  openRoundLog,
} from '../../src/shared/round-log/index.js';
import type { AggregationWorker } from '../../src/worker/aggregation-worker.js';
import { loadAggregationWorker } from './lazy-modules.js';
import { testRedisUrl } from '../../../test-support/redis.js';

/**
 * An in-process aggregation worker for a coordinator (process) on `stateDir`: same key, same
 * pseudonym secret, appending to the same signed round log.
 */
export async function startRoundLogWorker(options: {
  redis: Redis;
  prefix: string;
  stateDir: string;
}): Promise<AggregationWorker> {
  const { startAggregationWorker } = await loadAggregationWorker();
  const signingKey = loadOrCreateCoordinatorKey(options.stateDir);
  return startAggregationWorker({
    redisUrl: testRedisUrl(),
    prefix: options.prefix,
    stateDir: options.stateDir,
    signingKey,
    roundLog: openRoundLog({
      redis: options.redis,
      prefix: options.prefix,
      filePath: defaultRoundLogPath(options.stateDir),
      signingKey,
      pseudonymSecret: await loadOrCreatePseudonymSecret(options.stateDir),
    }),
    useThread: false,
  });
}
