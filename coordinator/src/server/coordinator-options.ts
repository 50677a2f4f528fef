// What `createCoordinator` takes and what it returns; the wiring is in coordinator.ts.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type {
  SignedTask,
  SigningKeyPair,
  TaskControlAction,
  TaskControlState,
  TaskDefinitionInput,
} from '@flotilla/protocol';
import type { AdapterRegistry } from '../shared/adapter-registry.js';
import { defaultRoundLogPath } from '../shared/round-log/keys.js';
import type { BlobStore } from '../shared/blob-store/index.js';
import type { RedisKeys } from '../shared/keys.js';
import type { TaskRegistry } from '../shared/task-registry.js';
import type { ConnectionLimitOptions } from './connection-guard.js';
import type { StaticMount } from './dashboard/index.js';
import type { DeviceRegistry } from './device-registry.js';
import type { FlotillaMetrics } from './metrics/index.js';
import type { FleetPresence } from './presence.js';
import type { RateLimitOptions } from './rate-limiter.js';
import type { Revocation } from './revocation.js';
import type { RoundEvents } from './round-events.js';
import type { RoundLease } from './round-lease.js';
import type { RoundStore } from './round-store.js';
import type { SocketStats } from './socket-server.js';
import type { TransferLimits } from './transfer-limiter.js';
import type { BlobGcSchedule, BlobGcTimer } from './blob-gc-timer.js';

/** Options of `createCoordinator`. */
export interface CoordinatorOptions {
  /** `redis://…` or `unix:///…/redis.sock`. */
  redisUrl: string;
  /** Redis key prefix (also BullMQ's). Default `flotilla`. */
  prefix?: string;
  /** Directory for keys (`keys/coordinator.json`) and, by default, blobs (`blobs/`). */
  stateDir: string;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** TCP port; 0 picks a free one. Default 0. */
  port?: number;
  /** Blob store: a local directory (default `<stateDir>/blobs`) or Redis. */
  blobStore?: { kind: 'local'; dir?: string } | { kind: 'redis' };
  /** The coordinator's signing key. Default: loaded or created under `<stateDir>/keys`. */
  signingKey?: SigningKeyPair;
  /** A round in REPORTING found at start: resume it (default) or abandon it. */
  onRestart?: 'resume' | 'abandon';
  /**
   * Expiry of a decided round's Redis keys, set when the task's next round opens. Default 7 days
   * (`DEFAULT_ROUND_RETENTION_MS`); 0 keeps them forever. The round log is not affected.
   */
  roundRetentionMs?: number;
  /** Bearer token for operator routes (`/api/admin/*`, base-model uploads). None: routes refused. */
  operatorToken?: string;
  /** pino logger; default a silent one. */
  logger?: Logger;
  /**
   * Socket message budget of each device identity, shared by all its connections on every
   * coordinator process (kept in Redis); also each connection's budget before it answers the
   * challenge. Default 20 msg/s, burst 100 (`DEFAULT_RATE_LIMIT`).
   */
  rateLimit?: RateLimitOptions;
  /**
   * Period in ms at which the round driver writes repeated refusals of rounds that have ended as
   * `update.refusals` records (a round's own repeats are written before it closes). Default 30 000.
   */
  refusalFlushMs?: number;
  /** Per-device socket bounds and challenge timeout. Default: 4 pending, 1 authenticated, 10 s. */
  connectionLimits?: Partial<ConnectionLimitOptions>;
  /** Milliseconds an upload may stall (no byte received) before it is answered 408. Default 30 000. */
  uploadIdleTimeoutMs?: number;
  /**
   * Milliseconds `close()` lets HTTP requests in progress finish before it destroys every
   * connection still open (a silent client, a stalled upload). Default 2000
   * (`DEFAULT_CLOSE_GRACE_MS`).
   */
  closeGraceMs?: number;
  /**
   * Milliseconds a blob download may go without the client taking a byte before its connection is
   * closed (a paused reader must not hold a transfer slot and a file handle). Default 30 000.
   */
  downloadIdleTimeoutMs?: number;
  /** Bounds on concurrent blob transfers in this process. Default 64 in all, 4 per device. */
  transferLimits?: Partial<TransferLimits>;
  /**
   * Bytes of delta blobs read at once by update validation in this process; submissions beyond it
   * wait. Default 256 MiB (`DEFAULT_VALIDATION_BYTES`).
   */
  maxValidationBytes?: number;
  /**
   * Bytes of device uploads kept in memory until the submission naming them, which is then checked
   * without reading the blob back and hashing it again. Default 64 MiB
   * (`DEFAULT_RECENT_UPLOAD_BYTES`); 0 keeps none.
   */
  recentUploadBytes?: number;
  /**
   * Blob garbage collection (blob-gc.ts): every `intervalMs` (default 10 min) delete blobs that no
   * task, manifest, retained delta or round in flight needs and that were not used for `graceMs`
   * (default 1 h). `false` turns it off.
   */
  blobGc?: BlobGcSchedule | false;
  /**
   * Distinct blobs one device may store per round (its quota); past it `PUT /blobs` answers
   * `429 QUOTA_EXCEEDED`. Default 4 (`DEFAULT_MAX_UPLOADS_PER_ROUND`).
   */
  maxUploadsPerRound?: number;
  /**
   * Global cap on device uploads in bytes. A device's upload is also capped by the round it was
   * selected in (`budget.maxUploadBytes` = its task's `policy.maxBlobBytes`). Default 64 MiB.
   */
  maxDeviceBlobBytes?: number;
  /** Cap on operator uploads (base models) in bytes. Default 1 GiB. */
  maxOperatorBlobBytes?: number;
  /** Lifetime of session tokens in ms. Default 1 h. */
  sessionTtlMs?: number;
  /** Largest socket.io message in bytes. Default 64 KiB (tensors never travel over the socket). */
  maxHttpBufferSize?: number;
  /**
   * The signed round log every round event is appended to (Redis stream + JSONL mirror, default
   * `defaultRoundLogPath(stateDir)`); `false` logs round events to pino only. `keepLines`: newest
   * lines kept in the Redis stream once older ones are mirrored and signed (default 10,000; 0 =
   * never trim; `OpenRoundLogOptions.keepLines`).
   */
  roundLog?: { filePath?: string; keepLines?: number } | false;
  /** Overrides where round events go (tests, embedding). */
  roundEvents?: RoundEvents;
  /**
   * socket.io adapter: `redis-streams` (default) lets any number of coordinator processes on the
   * same Redis and prefix serve one fleet; `memory` is socket.io's in-process adapter.
   */
  socketAdapter?: 'redis-streams' | 'memory';
  /**
   * socket.io connection-state recovery window in ms (redis-streams adapter only; rooms and missed
   * packets survive a reconnect to any process). Default 0 (off): see cluster-adapter.ts.
   */
  recoveryWindowMs?: number;
  /**
   * Round-driver lease in ms: one process drives the round state machines; when it dies another
   * takes over after at most this long (plus ttl/3). Default 10_000. A restart on the same host
   * takes a dead holder's lease at once.
   */
  leaseTtlMs?: number;
  /** How long a process vouches for a device's socket without a refresh, in ms. Default 15_000. */
  presenceTtlMs?: number;
  /** Bearer tokens of auditors: read-only dashboard and `/api/audit/*`. Default none. */
  auditorTokens?: string[];
  /** Prometheus metrics served at `/metrics`. Default: a fresh registry (with process metrics). */
  metrics?: FlotillaMetrics;
  /** Bearer token required on `/metrics`. Default none: open (the server binds 127.0.0.1 by default). */
  metricsToken?: string;
  /** `/dashboard` options (stream check interval in ms, default 1000); `false` turns it off. */
  dashboard?: { streamIntervalMs?: number; historyLimit?: number } | false;
  /** Directories served read-only under URL prefixes, e.g. the browser device page at `/device/`. */
  staticMounts?: StaticMount[];
}

export interface Coordinator {
  url: string;
  port: number;
  prefix: string;
  keys: RedisKeys;
  coordinatorKey: SigningKeyPair;
  redis: Redis;
  blobs: BlobStore;
  devices: DeviceRegistry;
  tasks: TaskRegistry;
  adapters: AdapterRegistry;
  rounds: RoundStore;
  stats: SocketStats;
  /** The round-driver lease (true `holds()` on the one process that drives the rounds). */
  lease: RoundLease;
  /** Fleet-wide presence of devices' sockets. */
  presence: FleetPresence;
  /** The Prometheus metrics behind `/metrics`. */
  metrics: FlotillaMetrics;
  /** The blob garbage collector's timer (`runNow()` sweeps at once); null when `blobGc: false`. */
  blobGc: BlobGcTimer | null;
  /** Validates (module shapes, base blob present), signs and stores a task, then opens its first round. */
  createTask(input: TaskDefinitionInput): Promise<SignedTask>;
  /**
   * Pauses, resumes, stops or archives a task as `POST /api/admin/tasks/:id/<action>` does
   * (BAD_REQUEST when its status does not allow the action); written to the round log.
   */
  controlTask(request: {
    taskId: string;
    action: TaskControlAction;
    reason?: string | undefined;
  }): Promise<{ taskId: string } & TaskControlState>;
  /**
   * Revokes a device as `DELETE /api/admin/devices/:id` does: enrollment, session tokens, its
   * accepted update in open rounds, and its sockets on every coordinator process.
   */
  revokeDevice(deviceId: string): Promise<Revocation>;
  /**
   * Stops driving rounds, closes this process's sockets and the HTTP server (destroying
   * connections still open after `closeGraceMs`), flushes the round log (every append done, the
   * JSONL mirror up to the stream; at most 10 s), then closes the Redis connections. Once it
   * resolves, nothing writes under `stateDir`.
   */
  close(): Promise<void>;
}

/** Where this coordinator mirrors the round log, or undefined when it keeps none. */
export function roundLogMirrorPath(options: CoordinatorOptions): string | undefined {
  if (options.roundLog === false) return undefined;
  return options.roundLog?.filePath ?? defaultRoundLogPath(options.stateDir);
}
