import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadScenario } from '../../scenario/load.js';
import type { Scenario } from '../../scenario/schema.js';
import type { CentralizedRunResult } from '../../runner/centralized-run.js';
import type { StudyResult } from '../../study/run-study.js';
import { EXIT, parseNumberOption, printData, runCommand } from '../output.js';
import { commandSummary } from '../top-commands.js';

export interface SimulateFlags {
  out: string;
  stateDir?: string;
  redisUrl?: string;
  threads?: string;
  seed?: string;
  repeats?: string;
  centralized?: boolean;
  target?: string;
  progress?: boolean;
  stallTimeout?: string;
  json?: boolean;
}

function stallTimeoutMs(flags: SimulateFlags): { stallTimeoutMs?: number } {
  return flags.stallTimeout !== undefined
    ? {
        stallTimeoutMs:
          1000 * parseNumberOption('stall-timeout', flags.stallTimeout, (n) => n > 0, 'seconds > 0'),
      }
    : {};
}

/** `--target`: an accuracy in (0, 1]. */
export function parseTarget(raw: string | undefined): { target?: number } {
  return raw === undefined
    ? {}
    : { target: parseNumberOption('target', raw, (n) => n > 0 && n <= 1, 'an accuracy in (0, 1]') };
}

/** Runs a scenario, writes its report, verifies its round log; exit 1 if the log fails. */
export async function simulateAndReport(scenario: Scenario, flags: SimulateFlags): Promise<number> {
  const outDir = resolve(flags.out);
  const seeded = flags.seed !== undefined ? { ...scenario, seed: parseSeed(flags.seed) } : scenario;
  if (flags.repeats !== undefined) return simulateRepeats(seeded, flags);
  // The runner pulls in tfjs: load it only when a simulation actually runs.
  const { runAndReport } = await import('../../study/run-one.js');
  const { reportRun, summaryTable } = await import('../../runner/report-run.js');
  process.stderr.write(
    `flotilla: simulating "${seeded.name}" (${seeded.devices} devices, ${seeded.rounds} rounds, seed ${seeded.seed})\n`,
  );
  const run = await runAndReport(seeded, {
    outDir,
    stateDir: resolve(flags.stateDir ?? join(outDir, 'state')),
    cacheDir: resolve('.flotilla'),
    ...(flags.redisUrl ? { redisUrl: flags.redisUrl } : {}),
    ...(flags.threads ? { threads: Number(flags.threads) } : {}),
    ...stallTimeoutMs(flags),
    progress: flags.progress !== false,
  });
  const { result, verify } = run;
  const centralized = flags.centralized ? await centralizedBaselines(seeded) : [];
  // The federated run's report again, with the baselines drawn beside it and their budget stated.
  const report =
    centralized.length > 0
      ? reportRun(outDir, result, {
          runs: centralized.map((c) => ({ label: c.label, metrics: c.metrics })),
          facts: Object.fromEntries(centralized.map((c) => [`${c.label}: budget`, c.budget])),
        })
      : run.report;
  if (flags.json) {
    printData(
      {
        scenario: seeded.name,
        seed: seeded.seed,
        taskId: result.taskId,
        backend: result.backend,
        base: result.base,
        rounds: result.metrics,
        perDevice: result.perDevice?.summary ?? null,
        centralized: centralized.map(({ label, steps, examples, clipNorm, budget, metrics }) => ({
          label,
          steps,
          examples,
          clipNorm,
          budget,
          rounds: metrics,
        })),
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
  if (result.perDevice)
    process.stdout.write(
      `per device (${result.perDevice.summary.devices} own holdouts): mean ${(100 * result.perDevice.summary.mean).toFixed(1)}%, worst 10% ${(100 * result.perDevice.summary.worst10).toFixed(1)}%\n`,
    );
  for (const c of centralized)
    process.stdout.write(
      `${c.label}: ${(100 * (c.metrics.at(-1)?.accuracy ?? Number.NaN)).toFixed(1)}% after ${c.steps.toLocaleString('en-US')} steps on ${c.examples.toLocaleString('en-US')} pooled examples\n`,
    );
  process.stdout.write(
    `report: ${report.markdown}, ${report.html} (metrics: ${report.json}, ${report.csv})\n`,
  );
  process.stdout.write(`round log ${result.roundLogPath}: ${verify.output}\n`);
  return verify.ok ? EXIT.ok : EXIT.failed;
}

/** The centralized baselines of a scenario: without its clip bound, and with it when it has one. */
const baselineClips = (scenario: Scenario): boolean[] =>
  scenario.clipNorm === 'none' ? [false] : [false, true];

async function centralizedBaselines(scenario: Scenario): Promise<CentralizedRunResult[]> {
  const { centralizedRun } = await import('../../runner/centralized-run.js');
  const runs: CentralizedRunResult[] = [];
  for (const clip of baselineClips(scenario))
    runs.push(await centralizedRun(scenario, { cacheDir: resolve('.flotilla'), clip }));
  return runs;
}

const parseSeed = (raw: string): number =>
  parseNumberOption('seed', raw, (n) => Number.isInteger(n) && n >= 0, 'a whole number >= 0');

/**
 * `--repeats N`: the scenario with seeds seed, seed + 1, …, each run in `<out>/runs/<name>/seed-<s>/`,
 * and one report of means with 95% intervals. Running it again resumes where it stopped.
 */
async function simulateRepeats(scenario: Scenario, flags: SimulateFlags): Promise<number> {
  const repeats = parseNumberOption(
    'repeats',
    flags.repeats ?? '',
    (n) => Number.isInteger(n) && n >= 1 && n <= 1000,
    'a whole number from 1 to 1000',
  );
  const { runStudy, slugOf } = await import('../../study/run-study.js');
  const seeds = Array.from({ length: repeats }, (_, k) => scenario.seed + k);
  process.stderr.write(
    `flotilla: simulating "${scenario.name}" with ${repeats} seeds (${seeds[0]}–${seeds.at(-1)})\n`,
  );
  const study = await runStudy({
    outDir: resolve(flags.out),
    title: `Flotilla simulation: ${scenario.name}, ${repeats} seeds`,
    description: scenario.description,
    facts: { scenario: scenario.name, seeds: seeds.join(', ') },
    configurations: [
      { label: scenario.name, slug: slugOf(scenario.name), scenario },
      ...(flags.centralized
        ? baselineClips(scenario).map((clip) => ({
            label: `${scenario.name}: centralized, same steps${clip ? `, clipped to ${String(scenario.clipNorm)}` : ''}`,
            slug: slugOf(`${scenario.name}-centralized${clip ? '-clipped' : ''}`),
            scenario,
            centralized: { clip },
          }))
        : []),
    ],
    seeds,
    ...parseTarget(flags.target),
    cacheDir: resolve('.flotilla'),
    ...(flags.redisUrl ? { redisUrl: flags.redisUrl } : {}),
    ...(flags.threads ? { threads: Number(flags.threads) } : {}),
    ...stallTimeoutMs(flags),
    progress: flags.progress !== false,
  });
  return reportStudy(study);
}

/** Prints a study's comparison and where its report is; exit 1 if any round log failed. */
export async function reportStudy(study: StudyResult): Promise<number> {
  const { studySummary } = await import('../../study/study-report.js');
  process.stdout.write(`\n${studySummary(study.cells)}\n\n`);
  process.stdout.write(
    `${study.ran} run(s) now, ${study.resumed} found done; report: ${study.report.markdown}, ${study.report.html}\n`,
  );
  const unverified = study.cells.reduce((n, c) => n + c.unverified, 0);
  if (unverified > 0) process.stdout.write(`${unverified} run(s) whose round log did not verify\n`);
  return unverified === 0 ? EXIT.ok : EXIT.failed;
}

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description(commandSummary('simulate'))
    .argument('<scenario>', 'a built-in scenario name (see simulations/scenarios) or a YAML/JSON file')
    .requiredOption('--out <dir>', 'where metrics.json, metrics.csv, report.md/html and plots go')
    .option('--state-dir <dir>', 'keys, blobs, embedded Redis and round log (default <out>/state)')
    .option('--redis-url <url>', 'use this Redis instead of a private redis-server')
    .option('--threads <n>', 'device worker threads (default: cores - 1, at least 1)')
    .option('--seed <n>', 'override the scenario seed (the first seed with --repeats)')
    .option('--repeats <n>', 'run n seeds and report means with 95% confidence intervals')
    .option('--target <accuracy>', 'with --repeats: report the rounds each run took to reach this accuracy')
    .option(
      '--centralized',
      "also train the centralized baseline with the run's budget (same model and steps on pooled data), with and without the clip",
    )
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
    .option('--threads <n>', 'device worker threads (default: cores - 1, at least 1)')
    .option('--no-progress', 'no progress bar')
    .action((flags: SimulateFlags) =>
      runCommand(() => simulateAndReport(loadScenario('demo'), { ...flags, stateDir: resolve('.flotilla') })),
    );
}
