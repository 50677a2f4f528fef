// `npx tsx --conditions=@flotilla/source bench/ingest-side-by-side.ts <checkout> [<checkout> ...]
// [--devices 400] [--repeats 4]`: the coordinator's CPU per accepted update of two versions,
// alternating. Each checkout (a repository root with its node_modules; `.` is this one) runs the
// bench's ingest round against its own coordinator child: a warm-up round of other deltas, then
// `devices` devices each reporting a delta of 100,000 parameters, 32 in flight, CPU read from /proc
// from the first upload to the last ack (all threads and the main thread). One private redis-server;
// every child stopped by its pid. Prints one line per run and the medians.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startEmbeddedRedis } from '../coordinator/src/shared/embedded-redis.js';
import { startCoordinatorChild } from './lib/coordinator-handle.js';
import { LORA_100K, benchTask, enrollDevices, makeDeltaBlobs, runReportingRound } from './lib/fleet.js';
import { cpuPerItemSince, cpuSnapshot, median, type CpuSnapshot } from './lib/measure.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { devices: { type: 'string', default: '400' }, repeats: { type: 'string', default: '4' } },
});
const count = Number(values.devices);
const repeats = Number(values.repeats);
const checkouts = positionals.map((p) => resolve(p));
if (checkouts.length === 0 || !(count > 0) || !(repeats > 0))
  throw new Error('usage: ingest-side-by-side.ts <checkout> [<checkout> ...] [--devices n] [--repeats n]');

interface Run {
  all: number;
  main: number;
  perSecond: number;
}
const runs = new Map<string, Run[]>(checkouts.map((c) => [c, []]));
const dir = mkdtempSync(join(tmpdir(), 'flotilla-ingest-sbs-'));
const redis = await startEmbeddedRedis({ dataDir: join(dir, 'redis') });
try {
  const blobs = makeDeltaBlobs(count, LORA_100K);
  const warmUpBlobs = makeDeltaBlobs(count, LORA_100K, 1000 + count);
  for (let r = 0; r < repeats; r++) {
    for (const checkout of checkouts) {
      const tag = randomBytes(3).toString('hex');
      const coordinator = await startCoordinatorChild({
        redisUrl: redis.url,
        prefix: `sbs-${tag}`,
        stateDir: join(dir, tag),
        checkout,
      });
      try {
        await coordinator.call({ cmd: 'create-task', task: benchTask('ingest', count, LORA_100K) });
        await coordinator.call({ cmd: 'create-task', task: benchTask('warm-up', count, LORA_100K) });
        const devices = await enrollDevices(coordinator, { label: `sbs-${r}`, count });
        const round = { devices, concurrency: 32, timeoutMs: 300_000 };
        try {
          await runReportingRound({ ...round, blobs: warmUpBlobs, taskId: 'warm-up' });
          for (const d of devices) d.disconnect();
          let before: CpuSnapshot = { all: null, main: null };
          const run = await runReportingRound({
            ...round,
            blobs,
            taskId: 'ingest',
            onReportingStart: () => {
              before = cpuSnapshot(coordinator.pid);
            },
          });
          const cpu = cpuPerItemSince(coordinator.pid, before, run.accepted);
          if (cpu.all === null || cpu.main === null) throw new Error('no /proc: CPU time unmeasured');
          runs.get(checkout)?.push({ all: cpu.all, main: cpu.main, perSecond: run.acceptedPerSecond });
          process.stdout.write(
            `${checkout} run ${r}: ${run.accepted} accepted, CPU per update ${cpu.all.toFixed(2)} ms ` +
              `(main thread ${cpu.main.toFixed(2)}), ${run.acceptedPerSecond.toFixed(0)} updates/s, ` +
              `load ${loadavg()
                .map((l) => l.toFixed(1))
                .join(' ')}\n`,
          );
        } finally {
          for (const d of devices) d.disconnect();
        }
      } finally {
        await coordinator.stop();
      }
    }
  }
} finally {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
for (const [checkout, list] of runs)
  process.stdout.write(
    `${checkout}: median CPU per update ${median(list.map((x) => x.all)).toFixed(2)} ms, main thread ` +
      `${median(list.map((x) => x.main)).toFixed(2)} ms, ${median(list.map((x) => x.perSecond)).toFixed(0)} updates/s\n`,
  );
