import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Scenario } from '../scenario/schema.js';
import { aggregateRuns, type StudyCell } from './aggregate.js';
import { runAndReport, type RunAndReportOptions } from './run-one.js';
import { RoundMetricsSchema } from '../report/metrics.js';
import { writeReport } from '../report/write.js';
import { centralizedRun } from '../runner/centralized-run.js';
import { outcomeOf, readOutcome, scenarioDigest, writeOutcome, type RunOutcome } from './run-outcome.js';
import { writeStudyReport } from './study-report.js';

/** One configuration of a study; it runs once per seed. */
export interface StudyConfiguration {
  label: string;
  /** Its folder under `<out>/runs/` (unique in the study). */
  slug: string;
  scenario: Scenario;
  /**
   * Run the centralized baseline of the scenario with the federated run's budget instead of the
   * federated run (runner/centralized-run.ts), with or without the scenario's clip bound.
   */
  centralized?: { clip: boolean };
}

/**
 * How to run a study; each run gets the run options (`keepState` defaults to false here: round
 * logs and reports stay, retained deltas and Redis data go).
 */
export interface RunStudyOptions extends Omit<RunAndReportOptions, 'outDir' | 'stateDir'> {
  outDir: string;
  title: string;
  description?: string;
  facts?: Record<string, string>;
  configurations: readonly StudyConfiguration[];
  /** Each configuration runs with each of these as its `seed`. */
  seeds: readonly number[];
  /** Accuracy whose first round is reported (rounds to target). */
  target?: number;
  /** One line per run started or found done. Default: stderr. */
  log?: (line: string) => void;
}

export interface StudyResult {
  cells: StudyCell[];
  /** Runs done in this call, and found done by an earlier (interrupted) call. */
  ran: number;
  resumed: number;
  report: { markdown: string; html: string };
  backend: string;
}

/** Where the run of `configuration` with `seed` writes (its report, round log and outcome). */
export const runDir = (outDir: string, slug: string, seed: number): string =>
  join(outDir, 'runs', slug, `seed-${seed}`);

/**
 * Runs every configuration with every seed, seed by seed (so an interrupted study already has
 * whole comparisons for its first seeds), skipping runs whose outcome is on disk for the same
 * scenario: running it again after an interruption resumes it. After each run the comparison
 * report (`<outDir>/report.md`) is rewritten from every outcome so far.
 */
export async function runStudy(options: RunStudyOptions): Promise<StudyResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const outcomes = new Map<string, RunOutcome[]>(options.configurations.map((c) => [c.slug, []]));
  const total = options.configurations.length * options.seeds.length;
  let done = 0;
  let ran = 0;
  let resumed = 0;
  let backend = 'none';
  const rewrite = () => {
    const cells = options.configurations
      .filter((c) => (outcomes.get(c.slug) ?? []).length > 0)
      .map((c) =>
        aggregateRuns(c.label, outcomes.get(c.slug) ?? [], {
          ...(options.target !== undefined ? { target: options.target } : {}),
        }),
      );
    const report = writeStudyReport(options.outDir, {
      title: options.title,
      ...(options.description !== undefined ? { description: options.description } : {}),
      backend,
      facts: { ...options.facts, runs: `${done} of ${total} done` },
      cells,
    });
    return { cells, report };
  };
  for (const seed of options.seeds)
    for (const configuration of options.configurations) {
      const scenario: Scenario = { ...configuration.scenario, seed };
      const dir = runDir(options.outDir, configuration.slug, seed);
      const label = `[${done + 1}/${total}] ${configuration.label}, seed ${seed}`;
      let outcome = readOutcome(dir, scenario);
      if (outcome !== null) {
        log(`${label}: done already (${join(dir, 'outcome.json')})`);
        resumed++;
      } else if (configuration.centralized) {
        log(`${label}: running`);
        outcome = await centralizedOutcome(scenario, dir, configuration, options.cacheDir);
        writeOutcome(dir, outcome);
        ran++;
      } else {
        log(`${label}: running`);
        mkdirSync(dir, { recursive: true });
        const { cacheDir, redisUrl, threads, stallTimeoutMs, progress } = options;
        const run = await runAndReport(scenario, {
          outDir: dir,
          cacheDir,
          keepState: options.keepState === true,
          ...(redisUrl !== undefined ? { redisUrl } : {}),
          ...(threads !== undefined ? { threads } : {}),
          ...(stallTimeoutMs !== undefined ? { stallTimeoutMs } : {}),
          ...(progress !== undefined ? { progress } : {}),
        });
        outcome = outcomeOf(run);
        writeOutcome(dir, outcome);
        ran++;
      }
      backend = outcome.backend;
      outcomes.get(configuration.slug)?.push(outcome);
      done++;
      rewrite();
    }
  const { cells, report } = rewrite();
  return { cells, ran, resumed, report, backend };
}

/** A centralized baseline run, reported in `dir` like a federated one. */
async function centralizedOutcome(
  scenario: Scenario,
  dir: string,
  configuration: StudyConfiguration,
  cacheDir: string,
): Promise<RunOutcome> {
  const run = await centralizedRun(scenario, { cacheDir, clip: configuration.centralized?.clip === true });
  writeReport(dir, {
    title: `Centralized baseline: ${scenario.name}, seed ${scenario.seed}`,
    backend: run.backend,
    runs: [{ label: run.label, metrics: run.metrics }],
    facts: { budget: run.budget, 'base model digest': run.baseDigest },
  });
  return {
    seed: scenario.seed,
    scenarioDigest: scenarioDigest(scenario),
    backend: run.backend,
    baseDigest: run.baseDigest,
    metrics: RoundMetricsSchema.array().parse(run.metrics),
    perDevice: null,
    stopped: null,
    attack: null,
    logVerified: null,
    wallMs: run.wallMs,
    setupMs: 0,
  };
}

/** A folder name from a label: lower-case letters, digits and dashes. */
export function slugOf(label: string): string {
  return (
    label
      .toLowerCase()
      .replace(/[^a-z0-9.]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 80) || 'run'
  );
}
