// Runs the audit-precision suite: every case for every seed, each on a fresh state directory
// (its own keys, blobs and round log) with the real coordinator, worker and devices.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlotillaError } from '@flotilla/protocol';
import { runSimulation } from '../runner/run-simulation.js';
import { verifyRunLog } from '../runner/verify-run.js';
import { analyzeRun, readRoundLogEvents } from './analyze.js';
import {
  checkTargets,
  precisionMarkdown,
  summarizeCases,
  type CaseRun,
  type CaseSummary,
  type TargetCheck,
} from './report.js';
import { precisionSuite, type SuiteSize } from './suite.js';

export interface RunSuiteOptions {
  size: SuiteSize;
  seeds: readonly number[];
  /** Clip bound of the attacked runs (default 100: `ATTACK_CLIP_NORM`). */
  clipNorm?: number;
  /** Case names to run (default all); `attack-free` is added when an attack case needs it. */
  cases?: readonly string[];
  /** Where each run's state and report, and the suite's summary, go. */
  outDir: string;
  /** Base-model cache (shared across runs). */
  cacheDir: string;
  /** Use this Redis instead of a private redis-server per run. */
  redisUrl?: string;
  /** Device worker threads per run. */
  threads?: number;
  /** One line per finished run (default: none). */
  log?: (line: string) => void;
}

export interface SuiteResult {
  runs: CaseRun[];
  cases: CaseSummary[];
  targets: TargetCheck[];
  markdown: string;
}

export async function runPrecisionSuite(options: RunSuiteOptions): Promise<SuiteResult> {
  const suite = precisionSuite(
    options.size,
    options.clipNorm === undefined ? {} : { clipNorm: options.clipNorm },
  );
  const wanted = new Set(options.cases ?? suite.map((c) => c.name));
  for (const name of wanted)
    if (!suite.some((c) => c.name === name))
      throw new FlotillaError(
        'BAD_REQUEST',
        `unknown case "${name}" (cases: ${suite.map((c) => c.name).join(', ')})`,
      );
  if (suite.some((c) => c.kind === 'attack' && wanted.has(c.name))) wanted.add('attack-free');
  const selected = suite.filter((c) => wanted.has(c.name));
  const runs: CaseRun[] = [];
  for (const seed of options.seeds) {
    for (const c of selected) {
      const dir = join(options.outDir, `${c.name}-seed${seed}`);
      mkdirSync(dir, { recursive: true });
      const started = Date.now();
      const result = await runSimulation({
        scenario: { ...c.scenario, seed },
        stateDir: join(dir, 'state'),
        cacheDir: options.cacheDir,
        ...(options.redisUrl ? { redisUrl: options.redisUrl } : {}),
        ...(options.threads !== undefined ? { threads: options.threads } : {}),
        progress: false,
      });
      const precision = analyzeRun(result, readRoundLogEvents(result.roundLogPath));
      // The figures come from the round log: it must verify, aggregates recomputed, as an auditor's would.
      const verification = await verifyRunLog(result, join(dir, 'state'));
      writeFileSync(
        join(dir, 'precision.json'),
        `${JSON.stringify({ metrics: result.metrics, precision, verification }, null, 2)}\n`,
      );
      runs.push({ name: c.name, kind: c.kind, seed, precision, logVerified: verification.ok });
      options.log?.(
        `${c.name} seed ${seed}: honest flagged ${precision.honestFlagged}/${precision.honestUpdates}, ` +
          `attackers flagged ${precision.attackerFlagged}/${precision.attackerUpdates}, ` +
          `rejected ${precision.rejected}/${precision.audited}, final accuracy ${(100 * precision.finalAccuracy).toFixed(1)}%, ` +
          `round log ${verification.ok ? 'verified' : 'FAILED verification'} ` +
          `(${Math.round((Date.now() - started) / 1000)} s)`,
      );
    }
  }
  const cases = summarizeCases(runs);
  const targets = checkTargets(cases);
  const markdown = precisionMarkdown(cases, targets);
  writeFileSync(join(options.outDir, 'precision.md'), markdown);
  writeFileSync(
    join(options.outDir, 'precision.json'),
    `${JSON.stringify({ runs, cases, targets }, null, 2)}\n`,
  );
  return { runs, cases, targets, markdown };
}
