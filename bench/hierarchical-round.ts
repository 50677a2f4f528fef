// `npx tsx bench/hierarchical-round.ts [--updates 240] [--params 100000] [--shard-size 40]`: one
// FedAvg round through the real aggregate job, in one stage and in shard jobs, for docs/scaling.md.
// In-process runs sample this process's memory (the aggregate job and the shard workers share it);
// child-process runs (`coordinator/src/worker/main.ts`) time 1 and 2 worker processes.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { initialAdapterTensors, type AdapterSpec } from '@flotilla/protocol';
import { LocalDirBlobStore } from '../coordinator/src/shared/blob-store/index.js';
import { loadOrCreateCoordinatorKey } from '../coordinator/src/shared/coordinator-key.js';
import { startEmbeddedRedis } from '../coordinator/src/shared/embedded-redis.js';
import { aggregateJobId, aggregateQueue } from '../coordinator/src/shared/queues.js';
import { redisOptionsFromUrl } from '../coordinator/src/shared/redis-connection.js';
import { TaskRegistry } from '../coordinator/src/shared/task-registry.js';
import { startAggregationWorker } from '../coordinator/src/worker/aggregation-worker.js';
import { spawnChildWorker } from '../coordinator/test/support/child-worker.js';
import {
  MemoryRoundLog,
  registerWorkerTask,
  deltaLike,
  jobData,
  storeDelta,
  testRandom,
} from '../coordinator/test/support/worker-fixtures.js';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    updates: { type: 'string', default: '240' },
    params: { type: 'string', default: '100000' },
    'shard-size': { type: 'string', default: '40' },
  },
});
const UPDATES = Number(values.updates);
const PARAMS = Number(values.params);
const SHARD_SIZE = Number(values['shard-size']);
const SPEC: AdapterSpec = { mode: 'bias', targetModules: ['dense'], r: 1, alpha: 1, seed: 0 };
const MODULES = { dense: { in: 2, out: PARAMS } };

const redisDir = mkdtempSync(join(tmpdir(), 'flotilla-hier-bench-'));
const redis = await startEmbeddedRedis({ dataDir: join(redisDir, 'redis') });
const connection = redisOptionsFromUrl(redis.url);
const client = new Redis(connection);

/** A fresh prefix and state directory holding the task and UPDATES stored deltas. */
async function seed(label: string) {
  const stateDir = mkdtempSync(join(tmpdir(), `flotilla-${label}-`));
  const prefix = `bench-${label}`;
  const signingKey = loadOrCreateCoordinatorKey(stateDir);
  const blobs = new LocalDirBlobStore({ dir: join(stateDir, 'blobs') });
  const tasks = new TaskRegistry({ redis: client, prefix, signingKey });
  await registerWorkerTask(
    { blobs, tasks },
    { taskId: 'hb', adapter: SPEC, modules: MODULES, minReports: 2 },
  );
  const v0 = initialAdapterTensors(SPEC, MODULES);
  const rand = testRandom(3);
  const refs = [];
  for (let k = 0; k < UPDATES; k++)
    refs.push(
      await storeDelta(
        blobs,
        deltaLike(v0, () => 0.01 * rand()),
        { updateId: `u${k}`, numExamples: 1 + (k % 7) },
      ),
    );
  return {
    stateDir,
    prefix,
    signingKey,
    data: jobData({ taskId: 'hb', roundNumber: 1, parentVersion: 0, updates: refs }),
  };
}

async function runJob(prefix: string, data: ReturnType<typeof jobData>): Promise<number> {
  const queue = aggregateQueue(connection, prefix);
  const started = performance.now();
  const job = await queue.add('aggregate', data, { jobId: aggregateJobId(data.roundId) });
  for (;;) {
    const state = await job.getState();
    if (state === 'completed') break;
    if (state === 'failed')
      throw new Error(`round failed: ${(await queue.getJob(job.id ?? ''))?.failedReason}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await queue.close();
  return performance.now() - started;
}

/** In-process worker: wall time and peak (heap + array buffers) above the baseline before the job. */
async function inProcess(label: string, threshold: number) {
  const round = await seed(label);
  const worker = await startAggregationWorker({
    redisUrl: redis.url,
    prefix: round.prefix,
    stateDir: round.stateDir,
    signingKey: round.signingKey,
    roundLog: new MemoryRoundLog(),
    useThread: false,
    hierarchical: { threshold, shardSize: SHARD_SIZE },
  });
  globalThis.gc?.();
  const used = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const baseline = used();
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, used())), 5);
  const ms = await runJob(round.prefix, round.data);
  clearInterval(sampler);
  await worker.close();
  rmSync(round.stateDir, { recursive: true, force: true });
  return { ms: Math.round(ms), peakMB: Math.round((peak - baseline) / 1e6) };
}

/** `processes` worker child processes: wall time from enqueue to completion. */
async function children(label: string, threshold: number, processes: number) {
  const round = await seed(label);
  const env = {
    REDIS_URL: redis.url,
    FLOTILLA_PREFIX: round.prefix,
    FLOTILLA_STATE_DIR: round.stateDir,
    LOG_LEVEL: 'info',
    FLOTILLA_HIERARCHICAL_THRESHOLD: String(threshold),
    FLOTILLA_SHARD_SIZE: String(SHARD_SIZE),
  };
  const workers = Array.from({ length: processes }, () => spawnChildWorker(env));
  await Promise.all(workers.map((w) => w.waitForLog('worker ready', 60_000)));
  const ms = await runJob(round.prefix, round.data);
  for (const w of workers) await w.kill();
  rmSync(round.stateDir, { recursive: true, force: true });
  return { ms: Math.round(ms) };
}

console.log(
  JSON.stringify({
    updates: UPDATES,
    params: PARAMS,
    shardSize: SHARD_SIZE,
    cores: cpus().length,
    load: loadavg()[0],
  }),
);
try {
  console.log('in-process, one stage ', JSON.stringify(await inProcess('one', 0)));
  console.log('in-process, shard jobs', JSON.stringify(await inProcess('hier', 1)));
  console.log('1 worker process, one stage ', JSON.stringify(await children('c1', 0, 1)));
  console.log('1 worker process, shard jobs', JSON.stringify(await children('c1h', 1, 1)));
  console.log('2 worker processes, shard jobs', JSON.stringify(await children('c2h', 1, 2)));
  console.log(JSON.stringify({ loadAfter: loadavg()[0] }));
} finally {
  client.disconnect();
  await redis.stop();
  rmSync(redisDir, { recursive: true, force: true });
}
