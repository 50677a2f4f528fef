import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SignedTask, SigningKeyPair, TaskDefinitionInput } from '@flotilla/protocol';
import type { AdapterRegistry } from '../shared/adapter-registry.js';
import { handleAuditRequest } from '../shared/audit-api.js';
import type { BlobAccess, BlobStore } from '../shared/blob-store/index.js';
import type { RedisKeys } from '../shared/keys.js';
import type { TaskRegistry } from '../shared/task-registry.js';
import { roundLogMirrorPath, type Coordinator, type CoordinatorOptions } from './coordinator-options.js';
import { DashboardSource, handleDashboardRequest, handleStaticRequest } from './dashboard/index.js';
import type { DeviceRegistry } from './device-registry.js';
import { createRequestListener } from './http-entry.js';
import { createHttpHandler } from './http-server.js';
import { handleMetricsRequest, type FlotillaMetrics, type RoundLogFollower } from './metrics/index.js';
import type { FleetPresence } from './presence.js';
import type { RoundEvents } from './round-events.js';
import type { RecentUploads } from './recent-uploads.js';
import type { FleetChannel } from './round-manager.js';
import { rollbackAdapter } from './rollback.js';
import type { SessionStore } from './sessions.js';
import { DEFAULT_TRANSFER_LIMITS, TransferLimiter } from './transfer-limiter.js';
import { DEFAULT_MAX_UPLOADS_PER_ROUND, createUploadAdmission } from './upload-admission.js';

// What the coordinator answers over HTTP besides socket.io's engine: the operator surfaces
// (/metrics, /dashboard, /api/audit, static mounts) first, then the blob and API routes.

export interface CoordinatorHttpDeps {
  options: CoordinatorOptions;
  redis: Redis;
  keys: RedisKeys;
  prefix: string;
  tasks: TaskRegistry;
  adapters: AdapterRegistry;
  devices: DeviceRegistry;
  blobs: BlobStore;
  blobAccess: BlobAccess;
  /** Device uploads kept for the submissions that name them (shared with update acceptance). */
  recentUploads: RecentUploads;
  sessions: SessionStore;
  presence: FleetPresence;
  /** The round log as the dashboard and the ε gauge read it. */
  roundLog: RoundLogFollower;
  metrics: FlotillaMetrics;
  coordinatorKey: SigningKeyPair;
  events: RoundEvents;
  /** Announces a rollback's promotion to the fleet. */
  fleet: FleetChannel;
  createTask(input: TaskDefinitionInput): Promise<SignedTask>;
  controlTask: Coordinator['controlTask'];
  revokeDevice: Coordinator['revokeDevice'];
  /** socket.io's engine path (with its trailing slash): those requests are the engine's. */
  enginePath: string;
  /** Aborted when the coordinator closes: ends the dashboard's live streams. */
  signal: AbortSignal;
  logger: Logger;
}

/** The HTTP server's request listener for the coordinator's surfaces and routes. */
export function coordinatorRequestListener(deps: CoordinatorHttpDeps): RequestListener {
  const { options, redis, keys, prefix, tasks, adapters, devices, blobs, blobAccess, recentUploads } = deps;
  const { sessions } = deps;
  const { presence, roundLog, metrics, coordinatorKey, events, fleet, signal, logger } = deps;
  const dashboard =
    options.dashboard === false
      ? null
      : {
          source: new DashboardSource({
            redis,
            keys,
            tasks,
            adapters,
            devices,
            roundLog,
            connectedDevices: () => presence.localCount,
            isOnline: (deviceId) => presence.isOnline(deviceId),
            ...(options.dashboard?.historyLimit !== undefined
              ? { historyLimit: options.dashboard.historyLimit }
              : {}),
          }),
          operatorToken: options.operatorToken,
          auditorTokens: options.auditorTokens ?? [],
          ...(options.dashboard?.streamIntervalMs !== undefined
            ? { streamIntervalMs: options.dashboard.streamIntervalMs }
            : {}),
          signal,
          logger,
        };
  const mirrorPath = roundLogMirrorPath(options);
  // /metrics, /dashboard, /api/audit and static mounts first; everything else to the HTTP routes.
  async function operatorSurfaces(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    return (
      (await handleMetricsRequest(req, res, {
        metrics,
        ...(options.metricsToken !== undefined ? { token: options.metricsToken } : {}),
      })) ||
      (dashboard !== null && (await handleDashboardRequest(req, res, dashboard))) ||
      (await handleAuditRequest(req, res, {
        redis,
        prefix,
        auditorTokens: options.auditorTokens ?? [],
        ...(mirrorPath ? { mirrorPath } : {}),
      })) ||
      (await handleStaticRequest(req, res, options.staticMounts ?? []))
    );
  }
  const httpRoutes = createHttpHandler({
    blobRoutes: {
      blobs,
      access: blobAccess,
      sessions,
      operatorToken: options.operatorToken,
      auditorTokens: options.auditorTokens ?? [],
      admitDeviceUpload: createUploadAdmission({
        redis,
        keys,
        sessions,
        maxDeviceBlobBytes: options.maxDeviceBlobBytes ?? 64 * 1024 ** 2,
        maxUploadsPerRound: options.maxUploadsPerRound ?? DEFAULT_MAX_UPLOADS_PER_ROUND,
      }),
      maxOperatorBlobBytes: options.maxOperatorBlobBytes ?? 1024 ** 3,
      uploadIdleTimeoutMs: options.uploadIdleTimeoutMs ?? 30_000,
      downloadIdleTimeoutMs: options.downloadIdleTimeoutMs ?? 30_000,
      limiter: new TransferLimiter({ ...DEFAULT_TRANSFER_LIMITS, ...options.transferLimits }),
      recentUploads,
      onBlobBytes: (direction, bytes) =>
        (direction === 'in' ? metrics.blobBytesReceived : metrics.blobBytesSent).inc(bytes),
    },
    tasks,
    adapters,
    devices,
    operatorToken: options.operatorToken,
    coordinatorPublicKey: coordinatorKey.publicKey,
    createTask: (input) => deps.createTask(input as TaskDefinitionInput),
    rollback: (taskId, request) =>
      rollbackAdapter(
        {
          tasks,
          adapters,
          blobs,
          signingKey: coordinatorKey,
          roundEvents: events,
          announce: (promoted) => fleet.broadcast('adapter:promoted', promoted),
        },
        taskId,
        request,
      ),
    controlTask: deps.controlTask,
    revokeDevice: deps.revokeDevice,
    logger,
  });
  return createRequestListener({
    enginePath: deps.enginePath,
    surfaces: operatorSurfaces,
    routes: httpRoutes,
    logger,
  });
}
