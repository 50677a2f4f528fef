import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Coordinator, CoordinatorOptions } from '../../src/server/coordinator.js';
import { testRedisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { loadCoordinatorServer } from './lazy-modules.js';

/** The operator token of every in-process test coordinator unless a test passes its own. */
export const TEST_OPERATOR_TOKEN = 'operator-token-for-tests-0123456789';

export interface TestCoordinator {
  coordinator: Coordinator;
  stateDir: string;
  stop(): Promise<void>;
}

export async function startTestCoordinator(
  options: Partial<CoordinatorOptions> = {},
): Promise<TestCoordinator> {
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'flotilla-coord-'));
  const { createCoordinator } = await loadCoordinatorServer();
  const coordinator = await createCoordinator({
    redisUrl: testRedisUrl(),
    prefix: uniquePrefix('coord'),
    operatorToken: TEST_OPERATOR_TOKEN,
    rateLimit: { perSecond: 1000, burst: 2000 },
    ...options,
    stateDir,
  });
  return {
    coordinator,
    stateDir,
    async stop() {
      await coordinator.close();
      rmSync(stateDir, { recursive: true, force: true, maxRetries: 5 });
    },
  };
}
