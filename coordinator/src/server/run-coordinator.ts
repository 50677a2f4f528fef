import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { startEmbeddedRedis, type EmbeddedRedis } from '../shared/embedded-redis.js';
import type { CoordinatorConfig } from './config.js';
import { createCoordinator, type Coordinator } from './coordinator.js';

export interface RunningCoordinator {
  coordinator: Coordinator;
  embeddedRedis: EmbeddedRedis | null;
  stop(): Promise<void>;
}

/** Starts a coordinator from a process config, with an embedded Redis when no URL is given. */
export async function runCoordinator(config: CoordinatorConfig): Promise<RunningCoordinator> {
  const logger = pino({ level: config.logLevel });
  const stateDir = resolve(config.stateDir);
  const embeddedRedis = config.redisUrl
    ? null
    : await startEmbeddedRedis({ dataDir: join(stateDir, 'redis') });
  const redisUrl = config.redisUrl ?? embeddedRedis?.url ?? '';
  const coordinator = await createCoordinator({
    redisUrl,
    prefix: config.prefix,
    stateDir,
    host: config.host,
    port: config.port,
    onRestart: config.onRestart,
    roundRetentionMs: config.roundRetentionHours * 60 * 60 * 1000,
    uploadIdleTimeoutMs: config.uploadIdleTimeoutMs,
    blobStore: config.blobStore === 'redis' ? { kind: 'redis' } : { kind: 'local' },
    logger,
    ...(config.operatorToken ? { operatorToken: config.operatorToken } : {}),
    ...(config.auditorToken ? { auditorTokens: [config.auditorToken] } : {}),
    ...(config.leaseTtlMs !== undefined ? { leaseTtlMs: config.leaseTtlMs } : {}),
    ...(config.presenceTtlMs !== undefined ? { presenceTtlMs: config.presenceTtlMs } : {}),
    ...(config.recoveryWindowMs !== undefined ? { recoveryWindowMs: config.recoveryWindowMs } : {}),
  });
  return {
    coordinator,
    embeddedRedis,
    async stop() {
      await coordinator.close();
      await embeddedRedis?.stop();
    },
  };
}
