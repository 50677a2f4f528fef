import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadScenario } from '../../scenario/load.js';
import type { Scenario } from '../../scenario/schema.js';
import { EXIT, parseNumberOption, printData, runCommand } from '../output.js';
import { commandSummary } from '../top-commands.js';

export interface SimulateFlags {
  out: string;
  stateDir?: string;
  redisUrl?: string;
  threads?: string;
  seed?: string;
  progress?: boolean;
  stallTimeout?: string;
  json?: boolean;
}

/** Runs a scenario, writes its report, verifies its round log; exit 1 if the log fails. */
export async function simulateAndReport(scenario: Scenario, flags: SimulateFlags): Promise<number> {
  const outDir = resolve(flags.out);
  const stateDir = resolve(flags.stateDir ?? join(outDir, 'state'));
  // Each run starts from an empty state so its round log holds exactly this run.
  rmSync(join(stateDir, 'audit'), { recursive: true, force: true });
  rmSync(join(stateDir, 'redis'), { recursive: true, force: true });
  // The runner pulls in tfjs: load it only when a simulation actually runs.
  const { runSimulation } = await import('../../runner/run-simulation.js');
  const { reportRun, summaryTable } = await import('../../runner/report-run.js');
  const seeded = flags.seed !== undefined ? { ...scenario, seed: Number(flags.seed) } : scenario;
  process.stderr.write(
    `flotilla: simulating "${seeded.name}" (${seeded.devices} devices, ${seeded.rounds} rounds, seed ${seeded.seed})\n`,
  );
  const result = await runSimulation({
    scenario: seeded,
    stateDir,
    cacheDir: resolve('.flotilla'),
    ...(flags.redisUrl ? { redisUrl: flags.redisUrl } : {}),
    ...(flags.threads ? { threads: Number(flags.threads) } : {}),
    ...(flags.stallTimeout !== undefined
      ? {
          stallTimeoutMs:
            1000 * parseNumberOption('stall-timeout', flags.stallTimeout, (n) => n > 0, 'seconds > 0'),
        }
      : {}),
    progress: flags.progress !== false,
  });
  const report = reportRun(outDir, result);
  // Verify as an auditor would, recomputing every aggregate from the retained deltas.
  const { verifyRunLog } = await import('../../runner/verify-run.js');
  const verify = await verifyRunLog(result, stateDir);
  if (flags.json) {
    printData(
      {
        scenario: seeded.name,
        seed: seeded.seed,
        taskId: result.taskId,
        backend: result.backend,
        base: result.base,
        rounds: result.metrics,
        stopped: result.stopped,
        report,
        roundLog: { path: result.roundLogPath, verified: verify.ok, output: verify.output },
      },
      true,
    );
    return verify.ok ? EXIT.ok : EXIT.failed;
  }
  process.stdout.write(`\n${summaryTable(result)}\n\n`);
  if (result.stopped !== null)
    process.stdout.write(
      `the worker stopped the task after round ${result.metrics.length - 1}: ${result.stopped}\n`,
    );
  process.stdout.write(
    `backend: ${result.backend}; base model: ${
      result.base.cleanAccuracy !== null
        ? `${(100 * result.base.cleanAccuracy).toFixed(1)}% on ${result.base.referenceLabel ?? 'the reference set'}, `
        : ''
    }${(100 * result.base.shiftedAccuracy).toFixed(1)}% on ${result.base.testLabel}\n`,
  );
  process.stdout.write(
    `report: ${report.markdown}, ${report.html} (metrics: ${report.json}, ${report.csv})\n`,
  );
  process.stdout.write(`round log ${result.roundLogPath}: ${verify.output}\n`);
  return verify.ok ? EXIT.ok : EXIT.failed;
}

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description(commandSummary('simulate'))
    .argument('<scenario>', 'a built-in scenario name (see simulations/scenarios) or a YAML/JSON file')
    .requiredOption('--out <dir>', 'where metrics.json, metrics.csv, report.md/html and plots go')
    .option('--state-dir <dir>', 'keys, blobs, embedded Redis and round log (default <out>/state)')
    .option('--redis-url <url>', 'use this Redis instead of a private redis-server')
    .option('--threads <n>', 'device worker threads (default: cores)')
    .option('--seed <n>', 'override the scenario seed')
    .option(
      '--stall-timeout <seconds>',
      'fail when a round makes no progress for this long, naming what it waits for (default 120)',
    )
    .option('--no-progress', 'no progress output')
    .option('--json', 'print the run (per-round metrics, report files, round-log check) as JSON on stdout')
    .action((name: string, flags: SimulateFlags) =>
      runCommand(() => simulateAndReport(loadScenario(name), flags)),
    );
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(commandSummary('demo'))
    .option('--out <dir>', 'report directory', '.flotilla/demo')
    .option('--threads <n>', 'device worker threads (default: cores)')
    .option('--no-progress', 'no progress bar')
    .action((flags: SimulateFlags) =>
      runCommand(() => simulateAndReport(loadScenario('demo'), { ...flags, stateDir: resolve('.flotilla') })),
    );
}
