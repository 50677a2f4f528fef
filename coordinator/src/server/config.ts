import { parseArgs } from 'node:util';
import { z } from 'zod';

/** Coordinator process configuration, from flags (first) or environment variables. */
export const CoordinatorConfigSchema = z.object({
  /** REDIS_URL; absent: a private embedded redis-server under `<stateDir>/redis`. */
  redisUrl: z.string().optional(),
  /** FLOTILLA_PREFIX, default `flotilla`. */
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .default('flotilla'),
  /** FLOTILLA_STATE_DIR, default `.flotilla`. */
  stateDir: z.string().default('.flotilla'),
  /** FLOTILLA_HOST, default 127.0.0.1. */
  host: z.string().default('127.0.0.1'),
  /** FLOTILLA_PORT, default 8787 (0 = any free port). */
  port: z.coerce.number().int().min(0).max(65535).default(8787),
  /** FLOTILLA_OPERATOR_TOKEN: bearer token of the operator routes. */
  operatorToken: z.string().min(16).optional(),
  /** FLOTILLA_AUDITOR_TOKEN: bearer token of the read-only auditor API and dashboard view. */
  auditorToken: z.string().min(16).optional(),
  /** FLOTILLA_METRICS_TOKEN: bearer token Prometheus must send to `/metrics`; absent, `/metrics` is open. */
  metricsToken: z.string().min(16).optional(),
  /** FLOTILLA_ON_RESTART: resume (default) or abandon the round in flight. */
  onRestart: z.enum(['resume', 'abandon']).default('resume'),
  /** FLOTILLA_ROUND_RETENTION_HOURS: a decided round's Redis keys expire this long after the next round opens (default 168 = 7 days; 0 = never). */
  roundRetentionHours: z.coerce.number().min(0).default(168),
  /** FLOTILLA_BLOB_STORE: local (default, `<stateDir>/blobs`) or redis. */
  blobStore: z.enum(['local', 'redis']).default('local'),
  /** FLOTILLA_LEASE_TTL_MS: round-driver lease between coordinator processes, default 10000 ms. */
  leaseTtlMs: z.coerce.number().int().min(100).optional(),
  /** FLOTILLA_PRESENCE_TTL_MS: device presence without a refresh, default 15000 ms. */
  presenceTtlMs: z.coerce.number().int().min(300).optional(),
  /** FLOTILLA_RECOVERY_WINDOW_MS: socket.io connection-state recovery window; default 0 (off). */
  recoveryWindowMs: z.coerce.number().int().min(0).optional(),
  /** FLOTILLA_UPLOAD_IDLE_TIMEOUT_MS: a PUT receiving no byte for this long is answered 408. Default 30 000. */
  uploadIdleTimeoutMs: z.coerce.number().int().positive().default(30_000),
  /** FLOTILLA_BLOB_GC_GRACE_MS: unreferenced blobs used within this long are kept. Default 3 600 000 (1 h). */
  blobGcGraceMs: z.coerce.number().int().nonnegative().default(3_600_000),
  /** FLOTILLA_BLOB_GC_INTERVAL_MS: time between blob garbage-collection sweeps; 0 = off. Default 600 000. */
  blobGcIntervalMs: z.coerce.number().int().nonnegative().default(600_000),
  /** FLOTILLA_MAX_UPLOADS_PER_ROUND: distinct blobs one device may store per round. Default 4. */
  maxUploadsPerRound: z.coerce.number().int().positive().default(4),
  /** FLOTILLA_DOWNLOAD_IDLE_TIMEOUT_MS: a GET /blobs whose client takes no byte for this long is closed. Default 30 000. */
  downloadIdleTimeoutMs: z.coerce.number().int().positive().default(30_000),
  /** FLOTILLA_ROUND_LOG_KEEP_LINES: newest round-log lines kept in the Redis stream once older ones are in every mirror file and signed; 0 = never trim. Default 10 000. */
  roundLogKeepLines: z.coerce.number().int().nonnegative().optional(),
  /** LOG_LEVEL, default info. */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type CoordinatorConfig = z.infer<typeof CoordinatorConfigSchema>;

export function readCoordinatorConfig(argv: string[], env: NodeJS.ProcessEnv): CoordinatorConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      'redis-url': { type: 'string' },
      prefix: { type: 'string' },
      'state-dir': { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'operator-token': { type: 'string' },
      'auditor-token': { type: 'string' },
      'metrics-token': { type: 'string' },
      'on-restart': { type: 'string' },
      'round-retention-hours': { type: 'string' },
      'blob-store': { type: 'string' },
      'log-level': { type: 'string' },
      'upload-idle-timeout-ms': { type: 'string' },
      'download-idle-timeout-ms': { type: 'string' },
      'max-uploads-per-round': { type: 'string' },
      'blob-gc-grace-ms': { type: 'string' },
      'blob-gc-interval-ms': { type: 'string' },
      'lease-ttl-ms': { type: 'string' },
      'presence-ttl-ms': { type: 'string' },
      'recovery-window-ms': { type: 'string' },
      'round-log-keep-lines': { type: 'string' },
    },
    strict: true,
  });
  return CoordinatorConfigSchema.parse({
    redisUrl: values['redis-url'] ?? env.REDIS_URL,
    prefix: values.prefix ?? env.FLOTILLA_PREFIX,
    stateDir: values['state-dir'] ?? env.FLOTILLA_STATE_DIR,
    host: values.host ?? env.FLOTILLA_HOST,
    port: values.port ?? env.FLOTILLA_PORT,
    operatorToken: values['operator-token'] ?? env.FLOTILLA_OPERATOR_TOKEN,
    auditorToken: values['auditor-token'] ?? env.FLOTILLA_AUDITOR_TOKEN,
    metricsToken: values['metrics-token'] ?? env.FLOTILLA_METRICS_TOKEN,
    onRestart: values['on-restart'] ?? env.FLOTILLA_ON_RESTART,
    roundRetentionHours: values['round-retention-hours'] ?? env.FLOTILLA_ROUND_RETENTION_HOURS,
    blobStore: values['blob-store'] ?? env.FLOTILLA_BLOB_STORE,
    logLevel: values['log-level'] ?? env.LOG_LEVEL,
    uploadIdleTimeoutMs: values['upload-idle-timeout-ms'] ?? env.FLOTILLA_UPLOAD_IDLE_TIMEOUT_MS,
    downloadIdleTimeoutMs: values['download-idle-timeout-ms'] ?? env.FLOTILLA_DOWNLOAD_IDLE_TIMEOUT_MS,
    maxUploadsPerRound: values['max-uploads-per-round'] ?? env.FLOTILLA_MAX_UPLOADS_PER_ROUND,
    blobGcGraceMs: values['blob-gc-grace-ms'] ?? env.FLOTILLA_BLOB_GC_GRACE_MS,
    blobGcIntervalMs: values['blob-gc-interval-ms'] ?? env.FLOTILLA_BLOB_GC_INTERVAL_MS,
    leaseTtlMs: values['lease-ttl-ms'] ?? env.FLOTILLA_LEASE_TTL_MS,
    presenceTtlMs: values['presence-ttl-ms'] ?? env.FLOTILLA_PRESENCE_TTL_MS,
    recoveryWindowMs: values['recovery-window-ms'] ?? env.FLOTILLA_RECOVERY_WINDOW_MS,
    roundLogKeepLines: values['round-log-keep-lines'] ?? env.FLOTILLA_ROUND_LOG_KEEP_LINES,
  });
}
