import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { canonicalJson, sha256Hex, utf8 } from '@flotilla/protocol';
import { DetectionCountsSchema } from '../report/attack-metrics.js';
import { PerDeviceSummarySchema, RoundMetricsSchema } from '../report/metrics.js';
import type { Scenario } from '../scenario/schema.js';
import type { RunAndReportResult } from './run-one.js';

/**
 * What a finished run of a study (repeats, sweep) keeps: enough to aggregate it with others, and
 * the digest of its scenario, so a resumed study reruns a run whose scenario changed.
 */
export const RunOutcomeSchema = z.object({
  seed: z.number().int().nonnegative(),
  /** SHA-256 of the canonical JSON of the scenario that ran. */
  scenarioDigest: z.string().regex(/^[0-9a-f]{64}$/),
  backend: z.string(),
  baseDigest: z.string(),
  metrics: z.array(RoundMetricsSchema),
  perDevice: PerDeviceSummarySchema.nullable(),
  /** Why the worker stopped the task early, else null. */
  stopped: z.string().nullable(),
  /**
   * Runs with attackers: what the defences caught over the whole run (metrics.json
   * `runs[].attack.total`); null without attackers. Absent in outcomes written before it was kept.
   */
  attack: DetectionCountsSchema.nullable().default(null),
  /** Whether the round log verified; null for a run without one (a centralized baseline). */
  logVerified: z.boolean().nullable(),
  /** Whole run and setup wall times, ms. */
  wallMs: z.number().nonnegative(),
  setupMs: z.number().nonnegative(),
});
export type RunOutcome = z.infer<typeof RunOutcomeSchema>;

/** File a run's outcome is written to, last, once everything else of the run is on disk. */
export const OUTCOME_FILE = 'outcome.json';

export const scenarioDigest = (scenario: Scenario): string => sha256Hex(utf8(canonicalJson(scenario)));

export function outcomeOf(run: RunAndReportResult): RunOutcome {
  const { result } = run;
  return {
    seed: result.scenario.seed,
    scenarioDigest: scenarioDigest(result.scenario),
    backend: result.backend,
    baseDigest: result.base.digest,
    metrics: RoundMetricsSchema.array().parse(result.metrics),
    perDevice: result.perDevice?.summary ?? null,
    stopped: result.stopped,
    attack: result.attack?.total ?? null,
    logVerified: run.verify.ok,
    wallMs: run.wallMs,
    setupMs: result.setupMs,
  };
}

/** Writes `outcome.json` atomically (a run is done exactly when the file exists). */
export function writeOutcome(dir: string, outcome: RunOutcome): void {
  const path = join(dir, OUTCOME_FILE);
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(outcome, null, 2)}\n`);
  renameSync(temporary, path);
}

/** The outcome of a finished run of exactly `scenario`, or null (not run, interrupted, or another scenario). */
export function readOutcome(dir: string, scenario: Scenario): RunOutcome | null {
  const path = join(dir, OUTCOME_FILE);
  if (!existsSync(path)) return null;
  let parsed: z.ZodSafeParseResult<RunOutcome>;
  try {
    parsed = RunOutcomeSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  } catch {
    return null;
  }
  return parsed.success && parsed.data.scenarioDigest === scenarioDigest(scenario) ? parsed.data : null;
}
