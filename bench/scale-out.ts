// `npx tsx bench/scale-out.ts [--devices 300] [--out bench/scale-out.json]`: the per-process figures
// behind docs/scaling.md. One private redis-server; for 1 and then 2 coordinator processes (bench
// coordinator children on one Redis and prefix, so they form one cluster), `devices` devices split
// round robin across them run one reporting round; then Redis memory per device and per update,
// and a hierarchical FedAvg flow next to the single-stage fold. Loopback only, bounded in time.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FlowProducer, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { decodeFloat32Tensors, encodeFloat32Tensors, sha256Hex } from '@flotilla/protocol';
import { openBlobStore } from '../coordinator/src/shared/blob-store/index.js';
import { startEmbeddedRedis } from '../coordinator/src/shared/embedded-redis.js';
import {
  COMBINE_QUEUE,
  CombineResultSchema,
  addHierarchicalFedAvgFlow,
} from '../coordinator/src/shared/hierarchical-flow.js';
import { redisKeys } from '../coordinator/src/shared/keys.js';
import type { AggregateUpdateRef } from '../coordinator/src/shared/queues.js';
import { redisOptionsFromUrl } from '../coordinator/src/shared/redis-connection.js';
import { startHierarchicalWorkers } from '../coordinator/src/worker/hierarchical/hierarchical-workers.js';
import { loadUpdates } from '../coordinator/src/worker/job/load-updates.js';
import { aggregateFedAvg } from '../coordinator/src/worker/strategies/fedavg.js';
import { flattenTensors } from '../coordinator/src/worker/strategies/flatten.js';
import { BenchDevice, NativeSigner, withConcurrency } from './lib/bench-device.js';
import { startCoordinatorChild, type CoordinatorHandle } from './lib/coordinator-handle.js';
import { benchTask, makeDeltaBlobs, runReportingRound, type DeltaLayout } from './lib/fleet.js';
import { fillPseudoRandom } from './lib/measure.js';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    devices: { type: 'string', default: '300' },
    connections: { type: 'string', default: '1000' },
    processes: { type: 'string', default: '1,2' },
    out: { type: 'string' },
  },
  strict: true,
});
const N = Math.max(10, Math.min(2000, Number(values.devices)));
const outPath = values.out ?? fileURLToPath(new URL('./scale-out.json', import.meta.url));
/** 10,000 trained parameters: 40 KB deltas, so the round measures the coordinator, not the network. */
const LAYOUT: DeltaLayout = { mode: 'lora', in: 313, out: 312, r: 16 };

const dir = mkdtempSync(join(tmpdir(), 'flotilla-scale-out-'));
const redisServer = await startEmbeddedRedis({ dataDir: join(dir, 'redis') });
const redis = new Redis(redisOptionsFromUrl(redisServer.url));
const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
const results: Record<string, unknown> = {
  generatedAt: new Date().toISOString(),
  machine: {
    cores: cpus().length,
    cpu: cpus()[0]?.model.trim(),
    node: process.version,
    loadAverage: loadavg(),
  },
  devices: N,
  deltaParams: 10_000,
};

async function clusterRound(processes: number) {
  const prefix = `so${processes}`;
  const stateDir = join(dir, `state-${processes}`);
  const children: CoordinatorHandle[] = [];
  try {
    for (let p = 0; p < processes; p++)
      children.push(
        await startCoordinatorChild({
          redisUrl: redisServer.url,
          prefix,
          stateDir,
          worker: false,
        }),
      );
    const first = children[0] as CoordinatorHandle;
    const devices = Array.from({ length: N }, (_, i) => {
      const seed = new Uint8Array(32);
      new DataView(seed.buffer).setUint32(0, i + 1);
      const target = children[i % processes] as CoordinatorHandle;
      return new BenchDevice(target.url, `so-${i}`, new NativeSigner(seed));
    });
    await first.call({
      cmd: 'register',
      devices: devices.map((d) => ({ deviceId: d.deviceId, publicKey: d.signer.publicKey })),
    });
    await first.call({ cmd: 'create-task', task: benchTask('scale', N, LAYOUT) });
    const rssBefore = await Promise.all(children.map((c) => c.memory()));
    const redisBefore = await usedMemory();
    // Progress on stderr: the round's state and how many devices hold a plan.
    const progress = setInterval(() => {
      first.call({ cmd: 'round', roundId: 'scale:1' }).then(
        (round) => {
          const r = round as { state?: string; acceptedCount?: number } | null;
          const planned = devices.filter((d) => d.plans.length > 0).length;
          process.stderr.write(
            `scale-out: ${processes} process(es): ${r?.state ?? 'no round'}, ${planned} plans, ${r?.acceptedCount ?? 0} accepted\n`,
          );
        },
        () => undefined,
      );
    }, 10_000);
    const run = await runReportingRound({
      devices,
      blobs: makeDeltaBlobs(16, LAYOUT),
      taskId: 'scale',
      concurrency: 64,
      timeoutMs: 240_000,
    });
    clearInterval(progress);
    const rssAfter = await Promise.all(children.map((c) => c.memory()));
    const redisAfter = await usedMemory();
    const keys = redisKeys(prefix);
    const sample = devices[0]?.deviceId ?? '';
    const perKey = {
      presenceBytes: Number(await redis.call('MEMORY', 'USAGE', keys.presence(sample))),
      deviceRecordBytes: Number(await redis.call('MEMORY', 'USAGE', keys.device(sample))),
      /** Round-driver lease acquisitions during the run (1 = no takeover, the lease never flapped). */
      leaseAcquisitions: Number(await redis.get(keys.driverFence())),
      updatesHashBytesPerUpdate:
        Number(await redis.call('MEMORY', 'USAGE', keys.roundUpdates('scale:1'), 'SAMPLES', '0')) / N,
    };
    for (const d of devices) d.disconnect();
    return {
      processes,
      accepted: run.accepted,
      refused: run.refused.length,
      acceptedPerSecond: run.acceptedPerSecond,
      submitAckMs: run.submitAckMs,
      heapPerConnectedDeviceBytes:
        rssAfter.reduce((s, m, i) => s + m.heapUsed - (rssBefore[i]?.heapUsed ?? 0), 0) / N,
      rssAfterMB: rssAfter.map((m) => m.rss / 1e6),
      redisBytesPerDeviceRound: (redisAfter - redisBefore) / N,
      ...perKey,
    };
  } finally {
    for (const c of children) await c.stop();
  }
}

/** Idle authenticated connections held by one coordinator process: memory per connection. */
async function heldConnections(count: number) {
  const child = await startCoordinatorChild({
    redisUrl: redisServer.url,
    prefix: 'conn',
    stateDir: join(dir, 'state-conn'),
    worker: false,
  });
  const devices = Array.from({ length: count }, (_, i) => {
    const seed = new Uint8Array(32);
    new DataView(seed.buffer).setUint32(0, i + 1);
    return new BenchDevice(child.url, `conn-${i}`, new NativeSigner(seed));
  });
  try {
    for (let i = 0; i < devices.length; i += 1000)
      await child.call({
        cmd: 'register',
        devices: devices
          .slice(i, i + 1000)
          .map((d) => ({ deviceId: d.deviceId, publicKey: d.signer.publicKey })),
      });
    const before = await child.memory();
    const redisBefore = await usedMemory();
    const t0 = performance.now();
    const results = await withConcurrency(devices, 100, Date.now() + 180_000, (d) => d.connect());
    const seconds = (performance.now() - t0) / 1000;
    const held = results.filter((r) => r?.status === 'fulfilled').length;
    const after = await child.memory();
    const redisAfter = await usedMemory();
    return {
      held,
      handshakesPerSecond: held / seconds,
      rssPerConnectionBytes: (after.rss - before.rss) / held,
      heapPerConnectionBytes: (after.heapUsed - before.heapUsed) / held,
      redisPerConnectionBytes: (redisAfter - redisBefore) / held,
    };
  } finally {
    for (const d of devices) d.disconnect();
    await child.stop();
  }
}

async function hierarchical(count: number, params: number, shardSize: number) {
  const prefix = 'hier';
  const blobs = openBlobStore({ kind: 'redis', redis, prefix });
  const connection = redisOptionsFromUrl(redisServer.url);
  const refs: AggregateUpdateRef[] = [];
  const shapes = { 'base_model.model.dense.lora_B.weight': [params / 16, 16] };
  for (let k = 0; k < count; k++) {
    const values = fillPseudoRandom(new Float32Array(params), 7 + k);
    const bytes = encodeFloat32Tensors(
      new Map([['base_model.model.dense.lora_B.weight', { shape: [params / 16, 16], values }]]),
    );
    const digest = sha256Hex(bytes);
    await blobs.put(digest, bytes);
    refs.push({
      updateId: `u${k}`,
      devicePseudonym: `d${k}`,
      blobDigest: digest,
      numExamples: 1 + (k % 50),
      norm: 1,
      clipped: false,
    });
  }
  // Single stage, as the aggregate job loads them (fetch, digest check, decode, shape and
  // finiteness checks: `loadUpdates`), then one fold.
  const t0 = performance.now();
  const expected = new Map(
    Object.entries(shapes).map(([name, shape]) => [name, { shape, values: new Float32Array(params) }]),
  );
  const { loaded } = await loadUpdates({ refs, blobs, expected });
  const flat = loaded.map((u) => ({ values: flattenTensors(u.delta).values, weight: u.ref.numExamples }));
  const single = aggregateFedAvg(flat).values;
  const singleMs = performance.now() - t0;
  const workers = await startHierarchicalWorkers({ connection, prefix, blobs });
  const flows = new FlowProducer({ connection, prefix });
  const events = new QueueEvents(COMBINE_QUEUE, { connection, prefix });
  await events.waitUntilReady();
  const t1 = performance.now();
  const job = await addHierarchicalFedAvgFlow(flows, {
    roundId: 'h:1',
    updates: refs,
    expectedShapes: shapes,
    weighting: 'examples',
    shardSize,
  });
  const result = CombineResultSchema.parse(await job.waitUntilFinished(events, 300_000));
  const flowMs = performance.now() - t1;
  const mean = flattenTensors(
    decodeFloat32Tensors((await blobs.get(result.meanDigest)) ?? new Uint8Array()).tensors,
  ).values;
  let maxAbsDiff = 0;
  for (let i = 0; i < mean.length; i++)
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs((mean[i] ?? 0) - (single[i] ?? 0)));
  await workers.close();
  await flows.close();
  await events.close();
  return {
    updates: count,
    params,
    shardSize,
    shards: Math.ceil(count / shardSize),
    singleStageMs: singleMs,
    flowOneWorkerMs: flowMs,
    maxAbsDiff,
  };
}

try {
  const cluster = [];
  for (const p of values.processes.split(',').map(Number)) cluster.push(await clusterRound(p));
  results.cluster = cluster;
  results.connections = await heldConnections(Math.max(10, Math.min(20_000, Number(values.connections))));
  results.hierarchical = await hierarchical(240, 100_000, 40);
  writeFileSync(outPath, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} finally {
  redis.disconnect();
  await redisServer.stop();
  rmSync(dir, { recursive: true, force: true });
}
