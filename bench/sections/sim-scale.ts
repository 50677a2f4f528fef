// Simulation scale: setup time, time per round and peak RSS of `runSimulation` with 1,000 and
// 10,000 virtual devices (100 per round), each run in its own child process. Dormant devices
// cost nothing, so the two fleets' rounds should take the same time; their setup grows with
// enrolment. The issue-17 limits (setup under a minute, peak RSS under 2 GB) are the references.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { resultLine, runToCompletion, startTsChild } from '../lib/child.js';
import { median } from '../lib/measure.js';
import type { BenchRow, SectionResult } from '../lib/report.js';

const CHILD = fileURLToPath(new URL('../children/sim-scale-child.ts', import.meta.url));
/** Issue 17: setup of a 10,000-device fleet under a minute, peak RSS under 2 GB. */
const SETUP_LIMIT_MS = 60_000;
const RSS_LIMIT_MB = 2048;
const PER_ROUND = 100;

const RunSchema = z.object({
  devices: z.number(),
  perRound: z.number(),
  setupMs: z.number(),
  roundMs: z.array(z.number()),
  decisions: z.array(z.string()),
  accepted: z.array(z.number()),
  nodePeakRssMb: z.number(),
  redisPeakRssMb: z.number().nullable(),
  backend: z.string(),
});
type Run = z.infer<typeof RunSchema> & { medianRoundMs: number; peakRssMb: number };

export interface SimScaleOptions {
  quick: boolean;
}

/**
 * The figures `bench/results.json` carries at its top level: setup ms at 1,000 and 10,000 devices,
 * median ms per round and peak RSS (node + redis-server, MB) at 10,000 devices.
 */
export const SIM_SCALE_KEYS = ['sim1kSetupMs', 'sim10kSetupMs', 'sim10kRoundMs', 'sim10kPeakRssMb'] as const;
type SimScaleKeys = Record<(typeof SIM_SCALE_KEYS)[number], number>;

async function runFleet(devices: number, rounds: number, cache: string): Promise<Run> {
  process.stderr.write(`bench: sim-scale: ${devices.toLocaleString('en-US')} devices…\n`);
  const child = startTsChild(CHILD, [
    '--devices',
    String(devices),
    '--per-round',
    String(PER_ROUND),
    '--rounds',
    String(rounds),
    '--cache',
    cache,
  ]);
  // Setup progress from the child is worth seeing while it runs.
  child.child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  const run = RunSchema.parse(resultLine(await runToCompletion(child, 1_200_000)));
  return {
    ...run,
    medianRoundMs: median(run.roundMs),
    // redis-server is part of the simulation: its peak counts (the sum bounds the joint peak).
    peakRssMb: run.nodePeakRssMb + (run.redisPeakRssMb ?? 0),
  };
}

export async function runSimScale(options: SimScaleOptions): Promise<SectionResult> {
  const rounds = options.quick ? 2 : 3;
  // Both fleets share the data and the base model, trained into the cache beforehand: the two
  // setups then differ only by what grows with the fleet (shards and enrolment).
  const cache = mkdtempSync(join(tmpdir(), 'flotilla-bench-sim-cache-'));
  let small: Run;
  let large: Run;
  try {
    await runToCompletion(startTsChild(CHILD, ['--devices', '1000', '--prepare', '--cache', cache]), 600_000);
    small = await runFleet(1000, rounds, cache);
    large = await runFleet(10_000, rounds, cache);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
  const row = (
    measure: string,
    ours: number,
    oursUnit: string,
    reference: number,
    referenceName: string,
    ratioMeaning: string,
    note?: string,
  ): BenchRow => ({
    section: 'sim-scale',
    measure,
    ours,
    oursUnit,
    reference,
    referenceUnit: oursUnit,
    referenceName,
    ratio: ours / reference,
    ratioMeaning,
    ...(note !== undefined ? { note } : {}),
  });
  const committed = (run: Run) => run.decisions.filter((d) => d === 'COMMITTED').length;
  const rows: BenchRow[] = [
    row(
      'setup, 10,000 devices',
      large.setupMs,
      'ms',
      SETUP_LIMIT_MS,
      'issue-17 limit',
      'ours / limit (goal <= 1)',
    ),
    row(
      'peak RSS, 10,000 devices',
      large.peakRssMb,
      'MB',
      RSS_LIMIT_MB,
      'issue-17 limit',
      'ours / limit (goal <= 1)',
      `node ${large.nodePeakRssMb.toFixed(0)} MB + redis-server ${(large.redisPeakRssMb ?? 0).toFixed(0)} MB`,
    ),
    row(
      'time per round, 10,000 devices',
      large.medianRoundMs,
      'ms',
      small.medianRoundMs,
      '1,000 devices',
      '10k / 1k (dormant devices cost nothing: ~1)',
      `${PER_ROUND} devices per round, median of ${rounds} rounds; ${committed(large)} of ${rounds} committed at 10k, ${committed(small)} at 1k`,
    ),
    row(
      'setup, 10,000 devices',
      large.setupMs,
      'ms',
      small.setupMs,
      '1,000 devices',
      '10k / 1k (enrolment grows with the fleet)',
    ),
    row('peak RSS, 10,000 devices', large.peakRssMb, 'MB', small.peakRssMb, '1,000 devices', '10k / 1k'),
  ];
  return {
    rows,
    details: { rounds, perRound: PER_ROUND, small, large },
    keys: {
      sim1kSetupMs: small.setupMs,
      sim10kSetupMs: large.setupMs,
      sim10kRoundMs: large.medianRoundMs,
      sim10kPeakRssMb: large.peakRssMb,
    } satisfies SimScaleKeys,
  };
}
