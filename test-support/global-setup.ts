import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedRedis, type EmbeddedRedis } from '../coordinator/src/shared/embedded-redis.js';

let redis: EmbeddedRedis | undefined;
let dataDir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  if (process.env.REDIS_URL) {
    project.provide('redisUrl', process.env.REDIS_URL);
    return;
  }
  dataDir = mkdtempSync(join(tmpdir(), 'flotilla-test-redis-'));
  redis = await startEmbeddedRedis({ dataDir });
  project.provide('redisUrl', redis.url);
}

export async function teardown(): Promise<void> {
  await redis?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
