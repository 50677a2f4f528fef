// Child process of the ingest and round-overhead sections, driven over IPC: `--role coordinator`
// runs createCoordinator (real signed round log) on 127.0.0.1; `--role worker` runs the aggregation
// worker (BullMQ) on the same Redis, prefix and state directory, as two production processes would;
// `--role both` runs the two in one process.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { sha256Hex, useIsomorphicCrypto, type TaskDefinitionInput } from '@flotilla/protocol';
import { pino } from 'pino';
import { createCoordinator, roundLogEvents } from '@flotilla/coordinator/server';
import {
  defaultRoundLogPath,
  loadOrCreateCoordinatorKey,
  loadOrCreateRoundLogSecret,
  openRoundLog,
  redisOptionsFromUrl,
} from '@flotilla/coordinator/shared';
import { startAggregationWorker } from '@flotilla/coordinator/worker';
import {
  CoordinatorCommandSchema,
  type CoordinatorCommand,
  type CoordinatorReply,
} from '../lib/coordinator-ipc.js';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    'redis-url': { type: 'string' },
    prefix: { type: 'string' },
    'state-dir': { type: 'string' },
    role: { type: 'string', default: 'coordinator' },
    'isomorphic-crypto': { type: 'boolean', default: false },
  },
  strict: true,
});
const redisUrl = values['redis-url'];
const prefix = values.prefix;
const stateDir = values['state-dir'];
const role = values.role;
if (
  redisUrl === undefined ||
  prefix === undefined ||
  stateDir === undefined ||
  process.send === undefined ||
  (role !== 'coordinator' && role !== 'worker' && role !== 'both')
) {
  process.stderr.write(
    'usage (as an IPC child): coordinator-child --redis-url U --prefix P --state-dir D [--role coordinator|worker|both]\n',
  );
  process.exit(2);
}

const signingKey = loadOrCreateCoordinatorKey(stateDir);
const logRedis = new Redis(redisOptionsFromUrl(redisUrl));
const roundLog = openRoundLog({
  redis: logRedis,
  prefix,
  filePath: defaultRoundLogPath(stateDir),
  signingKey,
  pseudonymSecret: await loadOrCreateRoundLogSecret(stateDir),
});
const coordinator =
  role === 'worker'
    ? null
    : await createCoordinator({
        redisUrl,
        prefix,
        stateDir,
        host: '127.0.0.1',
        port: 0,
        signingKey,
        // The bench's devices send a handful of messages each; the per-socket limit is not under test.
        rateLimit: { perSecond: 1000, burst: 2000 },
        // Failed appends go to stderr (stdout carries the bench protocol).
        roundEvents: roundLogEvents(pino({ level: 'error' }, process.stderr), roundLog),
      });
// createCoordinator installs node:crypto; the comparison run puts the portable code back.
if (values['isomorphic-crypto']) useIsomorphicCrypto();
const worker =
  role !== 'coordinator'
    ? // As `flotilla worker` starts it: the shard math threads load with the process.
      await startAggregationWorker({
        redisUrl,
        prefix,
        stateDir,
        signingKey,
        roundLog,
        startShardMathThreads: true,
      })
    : null;

const gc = (globalThis as { gc?: () => void }).gc;

async function run(command: CoordinatorCommand): Promise<unknown> {
  if (command.cmd === 'memory') {
    gc?.();
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
  }
  if (coordinator === null) throw new Error(`${command.cmd}: this child runs the worker only`);
  switch (command.cmd) {
    case 'register': {
      for (const device of command.devices) await coordinator.devices.registerDevice(device);
      return { registered: command.devices.length };
    }
    case 'create-task': {
      const base = new Uint8Array(randomBytes(256));
      const digest = sha256Hex(base);
      await coordinator.blobs.put(digest, base);
      const task = {
        ...command.task,
        baseModel: { digest, format: 'tfjs-layers-bundle', bytes: base.length },
      } as unknown as TaskDefinitionInput;
      const signed = await coordinator.createTask(task);
      return { taskId: signed.task.taskId };
    }
    case 'round':
      return coordinator.rounds.get(command.roundId);
  }
}

process.on('message', (raw: unknown) => {
  const parsed = CoordinatorCommandSchema.safeParse(raw);
  const id =
    typeof raw === 'object' && raw !== null && 'id' in raw && typeof raw.id === 'number' ? raw.id : -1;
  const reply = (message: CoordinatorReply): void => {
    process.send?.(message);
  };
  if (!parsed.success) {
    reply({ id, ok: false, error: `bad command: ${parsed.error.issues[0]?.message ?? 'schema'}` });
    return;
  }
  run(parsed.data).then(
    (data) => reply({ id, ok: true, data: data ?? null }),
    (error: unknown) =>
      reply({ id, ok: false, error: error instanceof Error ? error.message : String(error) }),
  );
});

let stopping = false;
const shutdown = (): void => {
  if (stopping) return;
  stopping = true;
  const stop = async (): Promise<void> => {
    await worker?.close();
    await coordinator?.close();
    logRedis.disconnect();
  };
  stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
process.once('disconnect', shutdown);
process.stdout.write(
  `BENCH_READY ${JSON.stringify({ url: coordinator?.url ?? '', pid: process.pid, worker: worker !== null })}\n`,
);
