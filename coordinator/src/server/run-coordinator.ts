import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { startEmbeddedRedis, type EmbeddedRedis } from '../shared/embedded-redis.js';
import type { CoordinatorConfig } from './config.js';
import { createCoordinator, type Coordinator } from './coordinator.js';
import { installProcessGuard } from '../shared/failure-guards.js';
import { FlotillaMetrics } from './metrics/index.js';
import type { StaticMount } from './dashboard/index.js';

export interface RunningCoordinator {
  coordinator: Coordinator;
  embeddedRedis: EmbeddedRedis | null;
  stop(): Promise<void>;
}

/** What a process config cannot hold: things its launcher prepared (e.g. a built page). */
export interface RunCoordinatorExtras {
  /** Directories served read-only under URL prefixes (`flotilla coordinator --device-page`). */
  staticMounts?: StaticMount[];
}

/** Starts a coordinator from a process config, with an embedded Redis when no URL is given. */
export async function runCoordinator(
  config: CoordinatorConfig,
  extras: RunCoordinatorExtras = {},
): Promise<RunningCoordinator> {
  const logger = pino({ level: config.logLevel });
  const stateDir = resolve(config.stateDir);
  const embeddedRedis = config.redisUrl
    ? null
    : await startEmbeddedRedis({ dataDir: join(stateDir, 'redis') });
  if (embeddedRedis)
    logger.info(
      { url: embeddedRedis.url, pid: embeddedRedis.pid, supervisorPid: embeddedRedis.supervisorPid },
      'embedded redis-server started',
    );
  const redisUrl = config.redisUrl ?? embeddedRedis?.url ?? '';
  const metrics = new FlotillaMetrics();
  let coordinator: Coordinator;
  try {
    coordinator = await createCoordinator({
      metrics,
      redisUrl,
      prefix: config.prefix,
      stateDir,
      host: config.host,
      port: config.port,
      onRestart: config.onRestart,
      roundRetentionMs: config.roundRetentionHours * 60 * 60 * 1000,
      uploadIdleTimeoutMs: config.uploadIdleTimeoutMs,
      downloadIdleTimeoutMs: config.downloadIdleTimeoutMs,
      maxUploadsPerRound: config.maxUploadsPerRound,
      blobGc:
        config.blobGcIntervalMs === 0
          ? false
          : { graceMs: config.blobGcGraceMs, intervalMs: config.blobGcIntervalMs },
      blobStore: config.blobStore === 'redis' ? { kind: 'redis' } : { kind: 'local' },
      logger,
      ...(config.operatorToken ? { operatorToken: config.operatorToken } : {}),
      ...(config.auditorToken ? { auditorTokens: [config.auditorToken] } : {}),
      ...(config.metricsToken ? { metricsToken: config.metricsToken } : {}),
      ...(config.leaseTtlMs !== undefined ? { leaseTtlMs: config.leaseTtlMs } : {}),
      ...(config.presenceTtlMs !== undefined ? { presenceTtlMs: config.presenceTtlMs } : {}),
      ...(config.recoveryWindowMs !== undefined ? { recoveryWindowMs: config.recoveryWindowMs } : {}),
      ...(config.roundLogKeepLines !== undefined
        ? { roundLog: { keepLines: config.roundLogKeepLines } }
        : {}),
      ...(extras.staticMounts ? { staticMounts: extras.staticMounts } : {}),
    });
  } catch (error) {
    await embeddedRedis?.stop();
    throw error;
  }
  // Once serving, the process logs what escapes its handlers and keeps running
  // (failure-guards.ts); a failed start still ends it.
  const guard = installProcessGuard({ logger, onCaught: (kind) => metrics.uncaughtErrors.inc({ kind }) });
  return {
    coordinator,
    embeddedRedis,
    async stop() {
      await coordinator.close();
      await embeddedRedis?.stop();
      guard.uninstall();
    },
  };
}
