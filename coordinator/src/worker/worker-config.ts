import { z } from 'zod';
import { FlotillaError } from '@flotilla/protocol';

const optionalPositiveInt = z.coerce.number().int().positive().optional();

/** Worker process configuration, from environment variables (see `main.ts`). */
export const WorkerConfigSchema = z.object({
  /**
   * REDIS_URL (required): the coordinator's Redis. Unlike the coordinator, the worker never starts
   * its own: a private Redis would hold no jobs.
   */
  redisUrl: z.string().min(1),
  /** FLOTILLA_PREFIX: Redis key and BullMQ prefix, default `flotilla` (must match the coordinator's). */
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .default('flotilla'),
  /** FLOTILLA_STATE_DIR, default `.flotilla`: the coordinator's (key, pseudonym secret, blobs, round log). */
  stateDir: z.string().min(1).default('.flotilla'),
  /** FLOTILLA_BLOB_STORE: `local` (default, `<stateDir>/blobs`) or `redis`; must match the coordinator's. */
  blobStore: z.enum(['local', 'redis']).default('local'),
  /** LOG_LEVEL, default info. */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** FLOTILLA_NOISE_SEED: seed for reproducible DP noise (simulations only). Default: CSPRNG. */
  noiseSeed: z.string().min(1).optional(),
  /** FLOTILLA_LOCK_DURATION_MS: BullMQ job lock (ms); a killed worker's job moves on after at most this plus the stalled interval. Default 10_000. */
  lockDurationMs: optionalPositiveInt,
  /** FLOTILLA_STALLED_INTERVAL_MS: stalled-job check period (ms). Default 5_000. */
  stalledIntervalMs: optionalPositiveInt,
  /** FLOTILLA_WORKER_CONCURRENCY: jobs processed at once. Default 1. */
  concurrency: optionalPositiveInt,
  /**
   * FLOTILLA_HIERARCHICAL_THRESHOLD: rounds with at least this many updates aggregate in shard
   * jobs when their strategy decomposes into sums (docs/scaling.md). Default 200; 0 = never.
   */
  hierarchicalThreshold: z.coerce
    .number({ error: 'FLOTILLA_HIERARCHICAL_THRESHOLD must be a number of updates (0 = never)' })
    .int({ error: 'FLOTILLA_HIERARCHICAL_THRESHOLD must be a whole number of updates (0 = never)' })
    .nonnegative({ error: 'FLOTILLA_HIERARCHICAL_THRESHOLD must be >= 0 (0 = never)' })
    .optional(),
  /** FLOTILLA_SHARD_SIZE: updates summed per shard job. Default 100. */
  shardSize: z.coerce
    .number({ error: 'FLOTILLA_SHARD_SIZE must be a number of updates' })
    .int({ error: 'FLOTILLA_SHARD_SIZE must be a whole number of updates, >= 1' })
    .positive({ error: 'FLOTILLA_SHARD_SIZE must be a whole number of updates, >= 1' })
    .optional(),
  /**
   * FLOTILLA_SHARD_MATH_THREADS: worker threads for the shard jobs' checks, sums, medians and
   * screens; 0 = on the event loop. Default: one per core, at most 2.
   */
  shardMathThreads: z.coerce
    .number({ error: 'FLOTILLA_SHARD_MATH_THREADS must be a number of threads (0 = none)' })
    .int({ error: 'FLOTILLA_SHARD_MATH_THREADS must be a whole number of threads (0 = none)' })
    .nonnegative({ error: 'FLOTILLA_SHARD_MATH_THREADS must be >= 0 (0 = none)' })
    .optional(),
  /**
   * FLOTILLA_RETAIN_DELTAS_HOURS: keep each aggregated round's participant deltas this long (hours,
   * fractions allowed) so auditors can recompute the aggregate (`flotilla audit verify --blobs`);
   * blob garbage collection deletes them afterwards. Default: not retained.
   */
  retainDeltasHours: z.coerce
    .number({ error: 'FLOTILLA_RETAIN_DELTAS_HOURS must be a number of hours' })
    .positive({ error: 'FLOTILLA_RETAIN_DELTAS_HOURS must be > 0 (leave it unset to retain nothing)' })
    .optional(),
  /** FLOTILLA_ROUND_LOG_KEEP_LINES: newest round-log lines kept in the Redis stream once older ones are in every mirror file and signed; 0 = never trim. Default 10 000. */
  roundLogKeepLines: z.coerce
    .number({ error: 'FLOTILLA_ROUND_LOG_KEEP_LINES must be a number of lines' })
    .int({ error: 'FLOTILLA_ROUND_LOG_KEEP_LINES must be a whole number of lines, >= 0 (0 = never trim)' })
    .nonnegative({ error: 'FLOTILLA_ROUND_LOG_KEEP_LINES must be >= 0 (0 = never trim)' })
    .optional(),
  /**
   * FLOTILLA_TEST_DELAY_MS — TEST ONLY (crash-recovery tests): pause inside each job after the
   * aggregation record, so a test can kill the process mid-job. Never set it in production.
   */
  testDelayMs: z.coerce.number().int().nonnegative().optional(),
});
export type WorkerConfig = z.infer<typeof WorkerConfigSchema>;

const blankToUndefined = (value: string | undefined): string | undefined =>
  value === undefined || value.trim() === '' ? undefined : value;

/**
 * Reads the worker's configuration from the environment. Throws FlotillaError('BAD_REQUEST') with
 * a message meant for an operator (missing REDIS_URL, malformed values).
 */
export function readWorkerConfig(env: NodeJS.ProcessEnv): WorkerConfig {
  const redisUrl = blankToUndefined(env.REDIS_URL);
  if (redisUrl === undefined) {
    throw new FlotillaError(
      'BAD_REQUEST',
      "REDIS_URL is required: the worker must share the coordinator's Redis (e.g. redis://127.0.0.1:6379 or unix:///path/to/redis.sock, as the coordinator uses)",
    );
  }
  const parsed = WorkerConfigSchema.safeParse({
    redisUrl,
    prefix: blankToUndefined(env.FLOTILLA_PREFIX),
    stateDir: blankToUndefined(env.FLOTILLA_STATE_DIR),
    blobStore: blankToUndefined(env.FLOTILLA_BLOB_STORE),
    logLevel: blankToUndefined(env.LOG_LEVEL),
    noiseSeed: blankToUndefined(env.FLOTILLA_NOISE_SEED),
    lockDurationMs: blankToUndefined(env.FLOTILLA_LOCK_DURATION_MS),
    stalledIntervalMs: blankToUndefined(env.FLOTILLA_STALLED_INTERVAL_MS),
    concurrency: blankToUndefined(env.FLOTILLA_WORKER_CONCURRENCY),
    hierarchicalThreshold: blankToUndefined(env.FLOTILLA_HIERARCHICAL_THRESHOLD),
    shardSize: blankToUndefined(env.FLOTILLA_SHARD_SIZE),
    shardMathThreads: blankToUndefined(env.FLOTILLA_SHARD_MATH_THREADS),
    retainDeltasHours: blankToUndefined(env.FLOTILLA_RETAIN_DELTAS_HOURS),
    roundLogKeepLines: blankToUndefined(env.FLOTILLA_ROUND_LOG_KEEP_LINES),
    testDelayMs: blankToUndefined(env.FLOTILLA_TEST_DELAY_MS),
  });
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new FlotillaError('BAD_REQUEST', `invalid worker configuration: ${issues}`);
  }
  return parsed.data;
}
