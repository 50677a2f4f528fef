import { installNativeEd25519, installNativeSha256 } from '@flotilla/protocol/node';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Server } from 'socket.io';
import {
  FlotillaError,
  type ClientToServerEvents,
  type ServerToClientEvents,
  type SignedTask,
  type TaskDefinitionInput,
} from '@flotilla/protocol';
import { AdapterRegistry } from '../shared/adapter-registry.js';
import { BlobAccess, openBlobStore } from '../shared/blob-store/index.js';
import { loadOrCreateCoordinatorKey } from '../shared/coordinator-key.js';
import {
  defaultRoundLogPath,
  loadOrCreatePseudonymSecret,
  openRoundLog,
  roundLogStorage,
  signTailOnStart,
} from '../shared/round-log/index.js';
import { DEFAULT_PREFIX, redisKeys } from '../shared/keys.js';
import { aggregateQueue } from '../shared/queues.js';
import { redisOptionsFromUrl } from '../shared/redis-connection.js';
import { subscribeRoundOutcomes } from '../shared/round-outcomes.js';
import { TaskRegistry } from '../shared/task-registry.js';
import { DeviceRegistry } from './device-registry.js';
import { registerTask } from './register-task.js';
import { controlTask } from './control-task.js';
import { DEFAULT_RATE_LIMIT } from './rate-limiter.js';
import { DEFAULT_CONNECTION_LIMITS } from './connection-guard.js';
import { loggingRoundEvents, roundLogEvents } from './round-events.js';
import { RefusalLog } from './refusal-log.js';
import { logExclusions, revokeDevice } from './revocation.js';
import { RoundManager, type RoundOps } from './round-manager.js';
import { RoundResponses } from './round-responses.js';
import { DEFAULT_ROUND_RETENTION_MS, RoundStore } from './round-store.js';
import { redisStreamsAdapter, type ClusterAdapter } from './cluster-adapter.js';
import { FleetPresence } from './presence.js';
import { RoundLease } from './round-lease.js';
import { subscribeCoordinatorChannels } from './coordinator-channels.js';
import { coordinatorRequestListener } from './coordinator-http.js';
import { SessionStore } from './sessions.js';
import { blobStoreId, startBlobGc } from './blob-gc-timer.js';
import {
  DEFAULT_CLOSE_GRACE_MS,
  ROUND_LOG_FLUSH_TIMEOUT_MS,
  closeWithGrace,
  flushWithin,
  trackConnections,
} from './shutdown.js';
import { DEFAULT_VALIDATION_BYTES, ValidationGate } from './validation-gate.js';
import { DEFAULT_RECENT_UPLOAD_BYTES, RecentUploads } from './recent-uploads.js';
import {
  FlotillaMetrics,
  QUEUE_STATES,
  RoundLogFollower,
  observeFleetChannel,
  observeRoundEvents,
  observeSockets,
} from './metrics/index.js';
import { liveHoldoutAccuracy } from './metrics/holdout-accuracy.js';
import { attachFleetSockets, type FleetServer, type SocketData } from './socket-server.js';

import { roundLogMirrorPath, type Coordinator, type CoordinatorOptions } from './coordinator-options.js';

export type { Coordinator, CoordinatorOptions };

export async function createCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  // node:crypto verifies ed25519 ~80x faster than tweetnacl and hashes ~20x faster than
  // @noble/hashes (bench/: crypto section); every accepted update is verified and hashed.
  installNativeEd25519();
  installNativeSha256();
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const keys = redisKeys(prefix);
  const logger = options.logger ?? pino({ level: 'silent' });
  const redisOptions = redisOptionsFromUrl(options.redisUrl);
  // Commands issued in the same tick go out in one write: each accepted update takes about fifteen
  // (checks, admission, counters), and with many devices in flight one syscall per command was
  // most of the coordinator's CPU (bench: ingest).
  const redis = new Redis({ ...redisOptions, enableAutoPipelining: true });
  // Connected before anything subscribes: a SUBSCRIBE racing the ready check's INFO breaks the connection.
  const sub = new Redis({ ...redisOptions, lazyConnect: true });
  // ioredis reconnects by itself (commands queue meanwhile); without a listener every failed
  // reconnect attempt during a Redis restart is printed as an unhandled error event.
  for (const connection of [redis, sub])
    connection.on('error', (error: Error) => logger.warn({ err: error.message }, 'redis connection error'));
  await sub.connect();
  const coordinatorKey = options.signingKey ?? loadOrCreateCoordinatorKey(options.stateDir);
  const pseudonymSecret = await loadOrCreatePseudonymSecret(options.stateDir);
  const metrics = options.metrics ?? new FlotillaMetrics();
  const roundLog =
    options.roundEvents || options.roundLog === false
      ? null
      : openRoundLog({
          redis,
          prefix,
          filePath: roundLogMirrorPath(options) ?? defaultRoundLogPath(options.stateDir),
          signingKey: coordinatorKey,
          pseudonymSecret,
          onMirrorError: (error) => logger.warn({ err: error }, 'round-log mirror not updated'),
          onLaggingMirror: (lagging) =>
            logger.warn(
              lagging,
              'a round-log mirror stopped advancing and keeps lines in Redis (flotilla audit mirrors --remove <id> if its host is gone)',
            ),
          ...(options.roundLog?.keepLines !== undefined ? { keepLines: options.roundLog.keepLines } : {}),
        });
  // Records a killed writer left unsigned are covered by a head before this process goes on.
  if (roundLog) await signTailOnStart(roundLog, logger);
  const loggedEvents =
    options.roundEvents ??
    (roundLog ? roundLogEvents(logger, roundLog) : loggingRoundEvents(logger, pseudonymSecret));
  const events = observeRoundEvents(loggedEvents, metrics);
  const blobDir =
    options.blobStore?.kind === 'redis' ? null : (options.blobStore?.dir ?? join(options.stateDir, 'blobs'));
  const blobs =
    blobDir === null
      ? openBlobStore({ kind: 'redis', redis, prefix })
      : openBlobStore({ kind: 'local', dir: blobDir });
  const devices = new DeviceRegistry({ redis, prefix });
  const tasks = new TaskRegistry({ redis, prefix, signingKey: coordinatorKey });
  const adapters = new AdapterRegistry({ redis, prefix });
  const blobAccess = new BlobAccess({ redis, prefix });
  await blobAccess.backfill(tasks, adapters);
  const blobGc =
    options.blobGc === false
      ? null
      : startBlobGc({
          redis,
          prefix,
          blobs,
          tasks,
          adapters,
          storeId: blobStoreId(blobDir === null ? { kind: 'redis' } : { kind: 'local', dir: blobDir }),
          logger,
          ...options.blobGc,
        });
  const late: { manager?: RoundManager } = {};
  const lease = new RoundLease({
    redis,
    keys,
    logger,
    ...(options.leaseTtlMs !== undefined ? { ttlMs: options.leaseTtlMs } : {}),
    onAcquired: async () => {
      // The driver before may have died between an append and its head.
      if (roundLog) await signTailOnStart(roundLog, logger);
      await late.manager?.start();
    },
    onLost: () => late.manager?.suspend(),
  });
  const rounds = new RoundStore(
    redis,
    keys,
    lease.fence((operation, roundId) =>
      logger.warn({ operation, roundId }, 'round write refused: stale fencing token'),
    ),
    options.roundRetentionMs ?? DEFAULT_ROUND_RETENTION_MS,
  );
  const presence = new FleetPresence({
    redis,
    keys,
    logger,
    ...(options.presenceTtlMs !== undefined ? { ttlMs: options.presenceTtlMs } : {}),
  });
  const sessions = new SessionStore(redis, prefix, options.sessionTtlMs ?? 3_600_000);
  const queue = aggregateQueue(redisOptions, prefix);
  queue.on('error', (error: Error) => logger.warn({ err: error.message }, 'aggregate queue error'));

  const httpServer = createServer();
  const connections = trackConnections(httpServer);
  const cluster: ClusterAdapter | null =
    options.socketAdapter === 'memory'
      ? null
      : redisStreamsAdapter({
          redisOptions,
          keys,
          ...(options.recoveryWindowMs !== undefined ? { recoveryWindowMs: options.recoveryWindowMs } : {}),
        });
  const io: FleetServer = new Server<
    ClientToServerEvents,
    ServerToClientEvents,
    Record<string, never>,
    SocketData
  >(httpServer, {
    maxHttpBufferSize: options.maxHttpBufferSize ?? 64 * 1024,
    serveClient: false,
    ...cluster?.serverOptions,
  });
  function requireManager(): RoundManager {
    if (!late.manager) throw new FlotillaError('INTERNAL', 'coordinator is starting');
    return late.manager;
  }
  // The socket layer and the round manager need each other; the socket side reaches it late.
  const roundsProxy: RoundOps = {
    checkIn: (deviceId, checkIn, task) => requireManager().checkIn(deviceId, checkIn, task),
  };
  const recentUploads = new RecentUploads(options.recentUploadBytes ?? DEFAULT_RECENT_UPLOAD_BYTES);
  const acceptDeps = {
    redis,
    keys,
    rounds,
    tasks,
    devices,
    blobs,
    access: blobAccess,
    validations: new ValidationGate({ maxBytes: options.maxValidationBytes ?? DEFAULT_VALIDATION_BYTES }),
    events,
    recentUploads,
    observeValidation: (source: 'upload' | 'store') => metrics.updateValidations.inc({ source }),
  };
  const refusals = new RefusalLog({
    redis,
    keys,
    events,
    logger,
    leads: () => lease.holds(),
    ...(options.refusalFlushMs !== undefined ? { flushIntervalMs: options.refusalFlushMs } : {}),
  });
  const responses = new RoundResponses({
    accept: acceptDeps,
    refusals,
    afterResponse: (roundId) => requireManager().afterResponse(roundId),
    logger,
    observe: {
      refusal: (task, reason) => metrics.observeRefusal(task, reason),
      resubmission: (task) => metrics.observeResubmission(task),
    },
  });
  const { fleet, stats, disconnectDevice } = attachFleetSockets({
    io,
    devices,
    sessions,
    tasks,
    rounds: roundsProxy,
    responses,
    redis,
    keys,
    coordinatorKey,
    logger,
    rateLimit: options.rateLimit ?? DEFAULT_RATE_LIMIT,
    connectionLimits: { ...DEFAULT_CONNECTION_LIMITS, ...options.connectionLimits },
    presence,
  });
  const manager = new RoundManager({
    redis,
    keys,
    rounds,
    tasks,
    adapters,
    queue,
    events,
    logger,
    fleet: observeFleetChannel(fleet, metrics, logger),
    onRestart: options.onRestart ?? 'resume',
    lease,
    refusals,
    exclusions: { log: (round) => logExclusions({ redis, keys, events }, round) },
  });
  late.manager = manager;

  async function createTask(input: TaskDefinitionInput): Promise<SignedTask> {
    const signed = await registerTask({ tasks, blobs, task: input });
    await manager.onTaskChanged(signed.task.taskId);
    return signed;
  }

  const control = (request: Parameters<Coordinator['controlTask']>[0]) =>
    controlTask(
      { redis, keys, tasks, events, logger, onTaskChanged: (id) => manager.onTaskChanged(id) },
      request,
    );

  const mirrorPath = roundLogMirrorPath(options);
  const roundLogView = new RoundLogFollower({ redis, prefix, ...(mirrorPath ? { mirrorPath } : {}) });
  metrics.setSources({
    connectedDevices: observeSockets(io, metrics),
    queueCounts: () => queue.getJobCounts(...QUEUE_STATES),
    epsilonSpent: async () => {
      await roundLogView.refresh();
      return roundLogView.epsilonByTask();
    },
    holdoutAccuracy: () => liveHoldoutAccuracy(tasks, adapters),
    roundLogStorage: () => roundLogStorage(redis, prefix),
  });
  const closing = new AbortController();
  const revoke = (deviceId: string) =>
    revokeDevice({ redis, keys, devices, sessions, tasks, rounds, logger }, deviceId);
  httpServer.on(
    'request',
    coordinatorRequestListener({
      options,
      redis,
      keys,
      prefix,
      tasks,
      adapters,
      devices,
      blobs,
      blobAccess,
      recentUploads,
      sessions,
      presence,
      roundLog: roundLogView,
      metrics,
      coordinatorKey,
      events,
      fleet,
      createTask,
      controlTask: control,
      revokeDevice: revoke,
      enginePath: `${io.path()}/`,
      signal: closing.signal,
      logger,
    }),
  );
  const unsubscribe = await subscribeRoundOutcomes(sub, prefix, (outcome) => {
    manager
      .applyOutcome(outcome)
      .catch((error: unknown) => logger.error({ err: error, roundId: outcome.roundId }, 'outcome failed'));
  });
  await subscribeCoordinatorChannels({ sub, keys, logger, lease, manager, disconnectDevice });
  // Enrollments made before the public-key index existed: one key, one device id.
  for (const conflict of await devices.indexKeys())
    logger.warn(conflict, 'one public key is enrolled under several device ids: revoke all but one');
  presence.start();
  refusals.start();
  // A lone coordinator (or the first of a fleet) takes the lease here and resumes the rounds.
  await lease.start();

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  // Once listening, the server reports accept failures (EMFILE…) as 'error' events; unheard,
  // one would be thrown.
  httpServer.on('error', (error: Error) => logger.error({ err: error }, 'http server error'));
  const address = httpServer.address() as AddressInfo;
  const host = options.host ?? '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  logger.info({ url }, 'coordinator listening');

  return {
    url,
    port: address.port,
    prefix,
    keys,
    coordinatorKey,
    redis,
    blobs,
    devices,
    tasks,
    adapters,
    rounds,
    stats,
    lease,
    presence,
    metrics,
    createTask,
    controlTask: control,
    revokeDevice: revoke,
    blobGc,
    async close() {
      manager.stop();
      await blobGc?.stop();
      refusals.stop();
      await lease.stop();
      await unsubscribe().catch(() => undefined);
      closing.abort();
      // This process's sockets only: through the cluster adapter a plain disconnectSockets would
      // reach every coordinator's devices. Synchronous, so no socket is left for io.close() to
      // end as "server shutting down", whose session the adapter would save after its client closed.
      io.local.disconnectSockets(true);
      await closeWithGrace({
        io,
        connections,
        graceMs: options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS,
        logger,
      });
      await cluster?.close();
      await presence.stop();
      // Every append started before now is written, and the JSONL mirror holds the whole stream:
      // nothing writes under stateDir once close() resolves.
      if (roundLog) await flushWithin(roundLog.flush(), ROUND_LOG_FLUSH_TIMEOUT_MS, logger);
      await queue.close();
      sub.disconnect();
      await redis.quit().catch(() => undefined);
    },
  };
}
