import type { Command } from 'commander';
import { ConfigError, describeIssues, loadConfig } from '../config.js';
import { runCommand } from '../output.js';
import { commandSummary } from '../top-commands.js';
import { describeEnvironmentAt } from '../settings.js';
import { DEVICE_PAGE_PREFIX, buildDevicePageMount, devicePageWanted } from '../device-page-mount.js';

interface ServiceFlags {
  stateDir?: string;
  redisUrl?: string;
  prefix?: string;
  host?: string;
  port?: string;
  logLevel?: string;
  withWorker?: boolean;
  onRestart?: string;
  roundRetentionHours?: string;
  hierarchicalThreshold?: string;
  shardSize?: string;
  shardMathThreads?: string;
  blobStore?: string;
  leaseTtlMs?: string;
  presenceTtlMs?: string;
  recoveryWindowMs?: string;
  metricsToken?: string;
  uploadIdleTimeoutMs?: string;
  downloadIdleTimeoutMs?: string;
  maxUploadsPerRound?: string;
  blobGcGraceMs?: string;
  blobGcIntervalMs?: string;
  retainDeltasHours?: string;
  roundLogKeepLines?: string;
  devicePage?: boolean;
}

type EnvNames = Partial<Record<keyof ServiceFlags, string>>;

/** Coordinator settings `flotilla coordinator` takes as flags, and their environment variables. */
const COORDINATOR_ENV: EnvNames = {
  onRestart: 'FLOTILLA_ON_RESTART',
  roundRetentionHours: 'FLOTILLA_ROUND_RETENTION_HOURS',
  blobStore: 'FLOTILLA_BLOB_STORE',
  leaseTtlMs: 'FLOTILLA_LEASE_TTL_MS',
  presenceTtlMs: 'FLOTILLA_PRESENCE_TTL_MS',
  recoveryWindowMs: 'FLOTILLA_RECOVERY_WINDOW_MS',
  metricsToken: 'FLOTILLA_METRICS_TOKEN',
  uploadIdleTimeoutMs: 'FLOTILLA_UPLOAD_IDLE_TIMEOUT_MS',
  downloadIdleTimeoutMs: 'FLOTILLA_DOWNLOAD_IDLE_TIMEOUT_MS',
  maxUploadsPerRound: 'FLOTILLA_MAX_UPLOADS_PER_ROUND',
  blobGcGraceMs: 'FLOTILLA_BLOB_GC_GRACE_MS',
  blobGcIntervalMs: 'FLOTILLA_BLOB_GC_INTERVAL_MS',
  roundLogKeepLines: 'FLOTILLA_ROUND_LOG_KEEP_LINES',
};

/** Worker settings: the hierarchical-round thresholds, the blob store and delta retention. */
const WORKER_ENV: EnvNames = {
  hierarchicalThreshold: 'FLOTILLA_HIERARCHICAL_THRESHOLD',
  shardSize: 'FLOTILLA_SHARD_SIZE',
  shardMathThreads: 'FLOTILLA_SHARD_MATH_THREADS',
  blobStore: 'FLOTILLA_BLOB_STORE',
  retainDeltasHours: 'FLOTILLA_RETAIN_DELTAS_HOURS',
  roundLogKeepLines: 'FLOTILLA_ROUND_LOG_KEEP_LINES',
};

/** Each named setting from its flag, else its environment variable; unset ones are left out. */
function flagsOrEnv(flags: ServiceFlags, names: EnvNames): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [key, envName] of Object.entries(names)) {
    const value = flags[key as keyof ServiceFlags] ?? (envName ? process.env[envName] : undefined);
    if (typeof value === 'string') values[key] = value;
  }
  return values;
}

const ROUND_LOG_KEEP_LINES_HELP =
  'newest round-log lines kept in Redis once older ones are in every mirror file and signed; 0 = never trim (FLOTILLA_ROUND_LOG_KEEP_LINES, default 10000; docs/reliability.md)';

const BLOB_STORE_HELP =
  'where deltas and adapters live: local (<state-dir>/blobs) or redis, which every coordinator and worker on the Redis can reach (FLOTILLA_BLOB_STORE, default local)';

/** Resolves when SIGINT or SIGTERM arrives. */
function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

function commonFlags(command: Command): Command {
  return command
    .option('--state-dir <dir>', 'keys, blobs, embedded Redis data and the round log (FLOTILLA_STATE_DIR)')
    .option('--redis-url <url>', 'redis://host:port or unix:///path.sock (REDIS_URL)')
    .option('--prefix <prefix>', 'Redis key and queue prefix (FLOTILLA_PREFIX)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (FLOTILLA_LOG_LEVEL)');
}

/** `flotilla coordinator` and `flotilla worker`: the two long-running processes. */
export function registerServices(program: Command): void {
  commonFlags(program.command('coordinator'))
    .description(commandSummary('coordinator'))
    .option('--host <host>', 'interface to listen on (FLOTILLA_HOST, default 127.0.0.1)')
    .option('--port <port>', 'port (FLOTILLA_PORT, default 8787; 0 picks one)')
    .option(
      '--on-restart <policy>',
      'resume or abandon the round in flight after a restart (FLOTILLA_ON_RESTART, default resume)',
    )
    .option(
      '--round-retention-hours <hours>',
      "keep a decided round's Redis keys this long after the next round opens; 0 = forever (FLOTILLA_ROUND_RETENTION_HOURS, default 168)",
    )
    .option('--blob-store <kind>', BLOB_STORE_HELP)
    .option(
      '--lease-ttl-ms <ms>',
      'round-driver lease between coordinator processes; a dead driver is replaced within ttl + ttl/3 (FLOTILLA_LEASE_TTL_MS, default 10000)',
    )
    .option(
      '--presence-ttl-ms <ms>',
      "how long a process vouches for a device's socket without a refresh (FLOTILLA_PRESENCE_TTL_MS, default 15000)",
    )
    .option(
      '--recovery-window-ms <ms>',
      'socket.io connection-state recovery window; 0 = off (FLOTILLA_RECOVERY_WINDOW_MS, default 0; docs/scaling.md)',
    )
    .option(
      '--metrics-token <token>',
      'bearer token Prometheus must send to /metrics, at least 16 characters; unset, /metrics is open (FLOTILLA_METRICS_TOKEN)',
    )
    .option(
      '--upload-idle-timeout-ms <ms>',
      'a blob upload receiving no byte this long is answered 408 (FLOTILLA_UPLOAD_IDLE_TIMEOUT_MS, default 30000)',
    )
    .option(
      '--download-idle-timeout-ms <ms>',
      'a blob download whose client takes no byte this long is closed (FLOTILLA_DOWNLOAD_IDLE_TIMEOUT_MS, default 30000)',
    )
    .option(
      '--max-uploads-per-round <n>',
      'distinct blobs one device may store per round (FLOTILLA_MAX_UPLOADS_PER_ROUND, default 4)',
    )
    .option(
      '--blob-gc-grace-ms <ms>',
      'blobs nothing needs are deleted once unused this long (FLOTILLA_BLOB_GC_GRACE_MS, default 3600000; docs/operations.md)',
    )
    .option(
      '--blob-gc-interval-ms <ms>',
      'time between blob garbage-collection sweeps; 0 = off (FLOTILLA_BLOB_GC_INTERVAL_MS, default 600000)',
    )
    .option('--round-log-keep-lines <lines>', ROUND_LOG_KEEP_LINES_HELP)
    .option(
      '--device-page',
      `also serve the browser device page at ${DEVICE_PAGE_PREFIX}?taskId=<task>: people join a task from a browser after agreeing to what it sends (FLOTILLA_DEVICE_PAGE=1; docs/operations.md)`,
    )
    .option('--with-worker', 'also run an aggregation worker in this process')
    .action((flags: ServiceFlags) =>
      runCommand(async () => {
        const config = loadConfig({ ...globalFlags(program), ...pick(flags) });
        const servePage = devicePageWanted(flags.devicePage, process.env.FLOTILLA_DEVICE_PAGE);
        // The coordinator and worker (socket.io, BullMQ, tfjs) load only when they run.
        const { CoordinatorConfigSchema, runCoordinator } = await import('@flotilla/coordinator/server');
        const { WorkerConfigSchema, runWorker } = await import('@flotilla/coordinator/worker');
        const parsed = CoordinatorConfigSchema.safeParse({
          ...config,
          ...flagsOrEnv(flags, COORDINATOR_ENV),
        });
        if (!parsed.success) throw new ConfigError(describeIssues('coordinator config', parsed.error));
        const running = await runCoordinator(
          parsed.data,
          servePage ? { staticMounts: [await buildDevicePageMount(parsed.data.stateDir)] } : {},
        );
        const redisUrl = config.redisUrl ?? running.embeddedRedis?.url ?? '';
        process.stdout.write(`coordinator listening on ${running.coordinator.url}\n`);
        if (servePage)
          process.stdout.write(`device page ${running.coordinator.url}${DEVICE_PAGE_PREFIX}?taskId=<task>\n`);
        process.stdout.write(
          `redis ${redisUrl}${running.embeddedRedis ? ' (private; point workers at it with REDIS_URL)' : ''}\n`,
        );
        const worker = flags.withWorker
          ? await runWorker(
              WorkerConfigSchema.parse({
                redisUrl,
                prefix: config.prefix,
                stateDir: config.stateDir,
                logLevel: config.logLevel,
                ...flagsOrEnv({}, WORKER_ENV),
                blobStore: parsed.data.blobStore,
              }),
            )
          : null;
        const signal = await untilSignal();
        process.stderr.write(`flotilla: ${signal}, stopping\n`);
        await worker?.stop();
        await running.stop();
      }),
    );
  commonFlags(program.command('worker'))
    .description(commandSummary('worker'))
    .option(
      '--hierarchical-threshold <updates>',
      'rounds with at least this many updates aggregate in shard jobs when the strategy decomposes into sums; 0 = never (FLOTILLA_HIERARCHICAL_THRESHOLD, default 200)',
    )
    .option('--shard-size <updates>', 'updates summed per shard job (FLOTILLA_SHARD_SIZE, default 100)')
    .option(
      '--shard-math-threads <threads>',
      "worker threads for the shard jobs' math; 0 = on the event loop (FLOTILLA_SHARD_MATH_THREADS, default one per core, at most 2)",
    )
    .option('--blob-store <kind>', `${BLOB_STORE_HELP}; must match the coordinators'`)
    .option(
      '--retain-deltas-hours <hours>',
      "keep each aggregated round's deltas this long so auditors can recompute it (flotilla audit verify --blobs); unset = not retained (FLOTILLA_RETAIN_DELTAS_HOURS)",
    )
    .option('--round-log-keep-lines <lines>', ROUND_LOG_KEEP_LINES_HELP)
    .action((flags: ServiceFlags) =>
      runCommand(async () => {
        const config = loadConfig({ ...globalFlags(program), ...pick(flags) });
        if (!config.redisUrl) {
          throw new ConfigError(
            "redisUrl: the worker needs the coordinator's Redis (--redis-url or REDIS_URL; `flotilla coordinator` prints it)",
          );
        }
        const { WorkerConfigSchema, runWorker } = await import('@flotilla/coordinator/worker');
        const parsed = WorkerConfigSchema.safeParse({
          redisUrl: config.redisUrl,
          prefix: config.prefix,
          stateDir: config.stateDir,
          logLevel: config.logLevel,
          ...flagsOrEnv(flags, WORKER_ENV),
        });
        if (!parsed.success) throw new ConfigError(describeIssues('worker config', parsed.error));
        const running = await runWorker(parsed.data);
        const signal = await untilSignal();
        process.stderr.write(`flotilla: ${signal}, finishing the job in hand\n`);
        await running.stop();
      }),
    );
  describeEnvironmentAt(program, 'coordinator', [
    'stateDir',
    'redisUrl',
    'prefix',
    'host',
    'port',
    'operatorToken',
    'auditorToken',
    'logLevel',
  ]);
  describeEnvironmentAt(program, 'worker', ['stateDir', 'redisUrl', 'prefix', 'logLevel']);
}

function globalFlags(program: Command): { config?: string } {
  return program.opts<{ config?: string }>();
}

function pick(flags: ServiceFlags): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries({
      stateDir: flags.stateDir,
      redisUrl: flags.redisUrl,
      prefix: flags.prefix,
      host: flags.host,
      port: flags.port,
      logLevel: flags.logLevel,
    }).filter(([, value]) => value !== undefined),
  );
}
