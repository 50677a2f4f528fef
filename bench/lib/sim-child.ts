// What the simulation children (sim-scale, sim-memory) share: a base model pre-trained into the
// cache before the measured run, a run against a private redis-server of its own, and the peak
// resident set of a process.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedRedis } from '@flotilla/coordinator/shared';
import { runSimulation, type SimulationResult } from '../../simulations/src/runner/run-simulation.js';
import type { Scenario } from '../../simulations/src/scenario/schema.js';

/** Peak resident set of a process in MB (VmHWM), or null when /proc is not there. */
export function peakRssMb(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kb === undefined ? null : Number(kb) / 1024;
  } catch {
    return null;
  }
}

/**
 * Builds the scenario's data and trains its base model into `cacheDir` (the entry runSimulation
 * asks for), prints the child's result line and exits: the measured run then loads the base.
 */
export async function prepareBaseModel(scenario: Scenario, cacheDir: string): Promise<never> {
  const { taskBaseModel } = await import('../../simulations/src/model/task-base-model.js');
  const { scenarioTask } = await import('../../simulations/src/runner/scenario-data.js');
  await taskBaseModel({ scenario, task: scenarioTask(scenario), stateDir: cacheDir });
  process.stdout.write('BENCH_RESULT {"prepared":true}\n');
  process.exit(0);
}

/** A simulation's result and the peak RSS of each of its processes, MB (null: not readable). */
export interface MeasuredSimulation {
  result: SimulationResult;
  /** This process: main thread and every worker thread (`process.resourceUsage().maxRSS`). */
  nodePeakRssMb: number;
  supervisorPeakRssMb: number | null;
  redisPeakRssMb: number | null;
}

/**
 * Runs the scenario against a private redis-server (started here, stopped and removed afterwards)
 * and reads every process's peak before Redis stops.
 */
export async function simulateWithPrivateRedis(options: {
  scenario: Scenario;
  cacheDir: string | undefined;
  progress?: boolean;
}): Promise<MeasuredSimulation> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-sim-'));
  const redis = await startEmbeddedRedis({ dataDir: join(dir, 'redis') });
  try {
    const result = await runSimulation({
      scenario: options.scenario,
      stateDir: join(dir, 'state'),
      cacheDir: options.cacheDir ?? join(dir, 'cache'),
      redisUrl: redis.url,
      ...(options.progress !== undefined ? { progress: options.progress } : {}),
    });
    return {
      result,
      nodePeakRssMb: process.resourceUsage().maxRSS / 1024,
      supervisorPeakRssMb: peakRssMb(redis.supervisorPid),
      redisPeakRssMb: peakRssMb(redis.pid),
    };
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
