import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { WrittenReport } from '../report/write.js';
import { reportRun } from '../runner/report-run.js';
import { runSimulation, type SimulationResult } from '../runner/run-simulation.js';
import { verifyRunLog } from '../runner/verify-run.js';
import type { Scenario } from '../scenario/schema.js';

/** Options for {@link runAndReport}. */
export interface RunAndReportOptions {
  /** Where metrics.json, report.md/html and the plots go. */
  outDir: string;
  /** Keys, blobs, embedded Redis and the round log. Default `<outDir>/state`. */
  stateDir?: string;
  /** Where base models are cached (shared by runs). */
  cacheDir: string;
  redisUrl?: string;
  threads?: number;
  stallTimeoutMs?: number;
  progress?: boolean;
  /**
   * Keep the retained deltas and the Redis data once the round log is verified. Default true;
   * sweeps drop them (the round log, the keys and the report stay).
   */
  keepState?: boolean;
}

/** One run, reported and verified. */
export interface RunAndReportResult {
  result: SimulationResult;
  report: WrittenReport;
  /** The auditor's verification of the round log, every retained aggregate recomputed. */
  verify: { ok: boolean; output: string };
  /** Wall time of the whole run (setup, rounds, evaluation), ms. */
  wallMs: number;
}

/**
 * Runs a scenario on a fresh round log, writes its report, and verifies its round log as an
 * auditor would. The building block of `simulate`, `--repeats` and `sweep`.
 */
export async function runAndReport(
  scenario: Scenario,
  options: RunAndReportOptions,
): Promise<RunAndReportResult> {
  const stateDir = options.stateDir ?? join(options.outDir, 'state');
  // Each run starts from an empty state so its round log holds exactly this run.
  rmSync(join(stateDir, 'audit'), { recursive: true, force: true });
  rmSync(join(stateDir, 'redis'), { recursive: true, force: true });
  const started = Date.now();
  const result = await runSimulation({
    scenario,
    stateDir,
    cacheDir: options.cacheDir,
    ...(options.redisUrl !== undefined ? { redisUrl: options.redisUrl } : {}),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    ...(options.stallTimeoutMs !== undefined ? { stallTimeoutMs: options.stallTimeoutMs } : {}),
    progress: options.progress !== false,
  });
  const wallMs = Date.now() - started;
  const report = reportRun(options.outDir, result);
  const verify = await verifyRunLog(result, stateDir);
  if (options.keepState === false)
    for (const dir of ['blobs', 'redis']) rmSync(join(stateDir, dir), { recursive: true, force: true });
  return { result, report, verify, wallMs };
}
