// Coordinator ingest: devices in this process, the coordinator (createCoordinator with its signed
// round log, Redis in a private redis-server) in a child process. Measures accepted updates per
// second end to end, ack latency, and connections held with the coordinator's memory per connection.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedRedis } from '@flotilla/coordinator/shared';
import { withConcurrency, type BenchDevice, type DeltaBlob } from '../lib/bench-device.js';
import { startCoordinatorChild, type CoordinatorHandle } from '../lib/coordinator-handle.js';
import {
  LORA_100K,
  benchTask,
  deltaParams,
  enrollDevices,
  makeDeltaBlobs,
  runReportingRound,
  type RoundRun,
} from '../lib/fleet.js';
import { cpuPerItemSince, cpuSnapshot, sleep, type CpuSnapshot } from '../lib/measure.js';
import { runFloorLoad, startTransportFloor } from '../lib/transport-floor.js';
import type { BenchRow, SectionResult } from '../lib/report.js';

/** Top-level keys of `bench/results.json`: the shipped coordinator's ingest (null when it did not run). */
export const INGEST_KEYS = ['ingestUpdatesPerSecond', 'ingestAckP99Ms'] as const;
/** Issue 20's goal for one coordinator process: accepted updates of 100,000 parameters per second. */
const INGEST_GOAL_PER_SECOND = 1000;

export interface IngestOptions {
  quick: boolean;
}

type Crypto = 'isomorphic' | 'node';

interface ConnectionLevel {
  target: number;
  held: number;
  connectSeconds: number;
  rssBytes: number;
  heapUsedBytes: number;
  rssPerConnectionBytes: number;
  heapPerConnectionBytes: number;
  failures: number;
}

/** Opens authenticated connections level by level (cumulative), sampling the child's memory at each. */
async function holdConnections(
  coordinator: CoordinatorHandle,
  levels: readonly number[],
  perLevelMs: number,
): Promise<{ baseline: { rss: number; heapUsed: number }; levels: ConnectionLevel[] }> {
  const max = Math.max(...levels);
  // Keys are derived before the baseline is taken: key generation is not under test.
  const devices = await enrollDevices(coordinator, { label: 'hold', count: max });
  await sleep(500);
  const baseline = await coordinator.memory();
  const open: BenchDevice[] = [];
  const results: ConnectionLevel[] = [];
  try {
    for (const target of levels) {
      const t0 = performance.now();
      const batch = devices.slice(open.length, target);
      const settled = await withConcurrency(batch, 100, Date.now() + perLevelMs, (d) =>
        d.connect(perLevelMs),
      );
      batch.forEach((d, i) => {
        if (settled[i]?.status === 'fulfilled') open.push(d);
        else d.disconnect();
      });
      const connectSeconds = (performance.now() - t0) / 1000;
      await sleep(1000);
      const held = open.filter((d) => d.socket?.connected === true).length;
      const memory = await coordinator.memory();
      results.push({
        target,
        held,
        connectSeconds,
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        rssPerConnectionBytes: held > 0 ? (memory.rss - baseline.rss) / held : Number.NaN,
        heapPerConnectionBytes: held > 0 ? (memory.heapUsed - baseline.heapUsed) / held : Number.NaN,
        failures: batch.length - settled.filter((s) => s?.status === 'fulfilled').length,
      });
      if (held < target) break;
    }
  } finally {
    for (const d of devices) d.disconnect();
  }
  return { baseline, levels: results };
}

/** A CPU-per-update row against the goal's budget: one core at the goal rate. */
function cpuAgainstBudget(measure: string, ms: number | null, note: string): BenchRow {
  const budget = 1000 / INGEST_GOAL_PER_SECOND;
  return {
    section: 'ingest',
    measure,
    ours: ms,
    oursUnit: 'ms',
    reference: budget,
    referenceUnit: 'ms',
    referenceName: 'one core at the goal rate',
    ratio: (ms ?? Number.NaN) / budget,
    ratioMeaning: 'ours / budget (goal <= 1)',
    note,
  };
}

/** Reports per second the floor accepted, from its first upload to its last ack. */
function floorPerSecond(floor: { accepted: number; elapsedMs: number } | null): number | null {
  return floor === null || floor.elapsedMs <= 0 ? null : floor.accepted / (floor.elapsedMs / 1000);
}

/** The same load against the transport floor, warmed up the same way: its CPU per update. */
async function measureFloor(
  blobs: DeltaBlob[],
  warmUpBlobs: DeltaBlob[],
  concurrency: number,
  timeoutMs: number,
): Promise<{ accepted: number; elapsedMs: number; cpu: CpuSnapshot }> {
  const server = await startTransportFloor();
  try {
    await runFloorLoad({ url: server.url, blobs: warmUpBlobs, concurrency, timeoutMs });
    let before: CpuSnapshot = { all: null, main: null };
    const run = await runFloorLoad({
      url: server.url,
      blobs,
      concurrency,
      timeoutMs,
      onReportingStart: () => {
        before = cpuSnapshot(server.pid);
      },
    });
    return { ...run, cpu: cpuPerItemSince(server.pid, before, run.accepted) };
  } finally {
    await server.stop();
  }
}

export async function runIngest(options: IngestOptions): Promise<SectionResult> {
  const count = options.quick ? 50 : 400;
  const concurrency = 32;
  const levels = options.quick ? [1000] : [1000, 5000, 10000];
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-ingest-'));
  const redis = await startEmbeddedRedis({ dataDir: join(dir, 'redis') });
  const runs: Partial<Record<Crypto, RoundRun>> = {};
  // CPU ms per accepted update in the coordinator (all threads, and its main thread) and in this
  // process (the load generator).
  const cpuPerUpdate: Partial<Record<Crypto, { coordinator: CpuSnapshot; generator: number }>> = {};
  const warmUps: Partial<Record<Crypto, RoundRun>> = {};
  let floor: Awaited<ReturnType<typeof measureFloor>> | null = null;
  let connections: Awaited<ReturnType<typeof holdConnections>> | null = null;
  try {
    const blobs = makeDeltaBlobs(count, LORA_100K);
    // Other deltas (other digests) for the warm-up rounds.
    const warmUpBlobs = makeDeltaBlobs(count, LORA_100K, 1000 + count);
    for (const crypto of ['isomorphic', 'node'] as const) {
      const coordinator = await startCoordinatorChild({
        redisUrl: redis.url,
        prefix: `bench-${crypto}-${randomBytes(3).toString('hex')}`,
        stateDir: join(dir, crypto),
        crypto,
      });
      try {
        await coordinator.call({ cmd: 'create-task', task: benchTask('ingest', count, LORA_100K) });
        await coordinator.call({ cmd: 'create-task', task: benchTask('warm-up', count, LORA_100K) });
        const devices = await enrollDevices(coordinator, { label: `up-${crypto}`, count });
        try {
          // A round of other deltas first: a coordinator runs for days, so what is measured is its
          // steady state, not the JIT compiling its handlers during the first few hundred updates.
          warmUps[crypto] = await runReportingRound({
            devices,
            blobs: warmUpBlobs,
            taskId: 'warm-up',
            concurrency,
            timeoutMs: options.quick ? 60_000 : 180_000,
          });
          for (const d of devices) d.disconnect();
          // CPU from the first upload on: connecting and checking in are not ingest.
          let before: CpuSnapshot = { all: null, main: null };
          let generatorBefore = process.cpuUsage();
          const run = await runReportingRound({
            devices,
            blobs,
            taskId: 'ingest',
            concurrency,
            timeoutMs: options.quick ? 60_000 : 180_000,
            onReportingStart: () => {
              before = cpuSnapshot(coordinator.pid);
              generatorBefore = process.cpuUsage();
            },
          });
          const generator = process.cpuUsage(generatorBefore);
          runs[crypto] = run;
          cpuPerUpdate[crypto] = {
            coordinator: cpuPerItemSince(coordinator.pid, before, run.accepted),
            generator: (generator.user + generator.system) / 1000 / run.accepted,
          };
        } finally {
          for (const d of devices) d.disconnect();
        }
      } finally {
        await coordinator.stop();
      }
    }
    floor = await measureFloor(blobs, warmUpBlobs, concurrency, options.quick ? 60_000 : 180_000);
    // Connections in a fresh coordinator, so the baseline holds no garbage from the rounds above.
    const coordinator = await startCoordinatorChild({
      redisUrl: redis.url,
      prefix: `bench-hold-${randomBytes(3).toString('hex')}`,
      stateDir: join(dir, 'hold'),
    });
    try {
      connections = await holdConnections(coordinator, levels, options.quick ? 45_000 : 90_000);
    } finally {
      await coordinator.stop();
    }
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  // Ours is the coordinator as it ships (node:crypto); the reference swaps the isomorphic code back.
  const ours = runs.node;
  const portable = runs.isomorphic;
  const rows: BenchRow[] = [];
  const floorRate = floorPerSecond(floor);
  if (ours && portable) {
    const latency = (name: 'p50' | 'p99') => ({
      section: 'ingest',
      measure: `update:submit ack latency ${name}`,
      ours: ours.submitAckMs[name],
      oursUnit: 'ms',
      reference: portable.submitAckMs[name],
      referenceUnit: 'ms',
      referenceName: 'same, tweetnacl + @noble/hashes',
      ratio: ours.submitAckMs[name] / portable.submitAckMs[name],
      ratioMeaning: 'node:crypto / isomorphic latency',
    });
    rows.push(
      {
        section: 'ingest',
        measure: `accepted updates/s against the goal, ${concurrency} in flight`,
        ours: ours.acceptedPerSecond,
        oursUnit: 'updates/s',
        reference: INGEST_GOAL_PER_SECOND,
        referenceUnit: 'updates/s',
        referenceName: 'goal per coordinator process (issue 20)',
        ratio: ours.acceptedPerSecond / INGEST_GOAL_PER_SECOND,
        ratioMeaning: 'ours / goal (goal >= 1)',
      },
      // What this machine allows at all: the floor does only the work every coordinator must do,
      // under the same load generator on the same cores.
      {
        section: 'ingest',
        measure: `accepted updates/s against the transport floor, ${concurrency} in flight`,
        ours: ours.acceptedPerSecond,
        oursUnit: 'updates/s',
        reference: floorRate,
        referenceUnit: 'updates/s',
        referenceName: 'bare node:http + socket.io server, same load, same machine',
        ratio: ours.acceptedPerSecond / (floorRate ?? Number.NaN),
        ratioMeaning: 'ours / floor',
        note: 'the floor bounds any coordinator on this machine with this load generator beside it',
      },
      {
        section: 'ingest',
        measure: `accepted updates/s, ${count} devices x ${deltaParams(LORA_100K).toLocaleString('en-US')} params, ${concurrency} in flight`,
        ours: ours.acceptedPerSecond,
        oursUnit: 'updates/s',
        reference: portable.acceptedPerSecond,
        referenceUnit: 'updates/s',
        referenceName: 'same coordinator with tweetnacl + @noble/hashes put back',
        ratio: ours.acceptedPerSecond / portable.acceptedPerSecond,
        ratioMeaning: 'node:crypto speed-up of ingest',
        note:
          ours.accepted === count && portable.accepted === count
            ? 'ours = createCoordinator as shipped: node:crypto ed25519 (verify and round-log signing) and SHA-256'
            : `refused: ${[...ours.refused, ...portable.refused].slice(0, 3).join('; ')}`,
      },
      latency('p50'),
      latency('p99'),
      cpuAgainstBudget(
        'coordinator CPU per accepted update (all threads)',
        cpuPerUpdate.node?.coordinator.all ?? null,
        `the load generator (this process) used ${cpuPerUpdate.node?.generator.toFixed(2) ?? '-'} ms per update`,
      ),
      cpuAgainstBudget(
        'coordinator main-thread CPU per accepted update (its event loop)',
        cpuPerUpdate.node?.coordinator.main ?? null,
        'one event loop caps a process at 1000 / this many updates per second, whatever the cores',
      ),
      {
        section: 'ingest',
        measure: 'coordinator CPU per accepted update against the transport floor (all threads)',
        ours: cpuPerUpdate.node?.coordinator.all ?? null,
        oursUnit: 'ms',
        reference: floor?.cpu.all ?? null,
        referenceUnit: 'ms',
        referenceName: 'bare node:http + socket.io: receive, SHA-256, write + fsync, ed25519 verify, ack',
        ratio: (cpuPerUpdate.node?.coordinator.all ?? Number.NaN) / (floor?.cpu.all ?? Number.NaN),
        ratioMeaning: 'ours / floor',
        note: `floor main thread ${floor?.cpu.main?.toFixed(2) ?? '-'} ms per update; ${floor?.accepted ?? 0} reports`,
      },
      {
        section: 'ingest',
        measure: 'report latency p50 / p99 (upload + submit)',
        ours: ours.reportMs.p50,
        oursUnit: 'ms',
        reference: ours.reportMs.p99,
        referenceUnit: 'ms',
        referenceName: 'p99, same run',
        ratio: ours.reportMs.p99 / ours.reportMs.p50,
        ratioMeaning: 'p99 / p50',
      },
    );
  }
  const held = connections?.levels ?? [];
  const baselineRss = connections?.baseline.rss ?? Number.NaN;
  for (const level of held) {
    rows.push({
      section: 'ingest',
      measure: `connections held (target ${level.target.toLocaleString('en-US')}), heap per connection`,
      ours: level.heapPerConnectionBytes / 1024,
      oursUnit: 'KiB',
      reference: level.rssBytes / 1024 / 1024,
      referenceUnit: 'MiB',
      referenceName: `coordinator RSS (${(baselineRss / 1024 / 1024).toFixed(0)} MiB before)`,
      ratio: level.held / level.target,
      ratioMeaning: `held / target (${level.held} in ${level.connectSeconds.toFixed(1)} s)`,
    });
  }
  // RSS does not shrink after the enrolment garbage, so the per-connection RSS is the slope between
  // the first and the last level rather than the difference to the baseline.
  const first = held[0];
  const last = held[held.length - 1];
  if (first !== undefined && last !== undefined && last.held > first.held) {
    const slope = (last.rssBytes - first.rssBytes) / (last.held - first.held);
    rows.push({
      section: 'ingest',
      measure: `RSS per connection, ${first.held.toLocaleString('en-US')} -> ${last.held.toLocaleString('en-US')} connections`,
      ours: slope / 1024,
      oursUnit: 'KiB',
      reference: (last.heapUsedBytes - first.heapUsedBytes) / (last.held - first.held) / 1024,
      referenceUnit: 'KiB',
      referenceName: 'JS heap per connection, same levels',
      ratio: slope / ((last.heapUsedBytes - first.heapUsedBytes) / (last.held - first.held)),
      ratioMeaning: 'RSS / heap growth',
    });
  }
  const keys: Partial<Record<(typeof INGEST_KEYS)[number], number>> = ours
    ? { ingestUpdatesPerSecond: ours.acceptedPerSecond, ingestAckP99Ms: ours.submitAckMs.p99 }
    : {};
  return {
    rows,
    details: {
      devices: count,
      concurrency,
      layout: LORA_100K,
      warmUps,
      runs,
      cpuPerUpdate,
      floor,
      connections,
    },
    keys,
  };
}
