import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultRoundLogPath } from '@flotilla/coordinator/shared';
import { RoundLogEventSchema, type RoundLogEvent } from '@flotilla/protocol';
import type { RunMetrics } from '../src/report/metrics.js';
import { loadScenario, validateScenario } from '../src/scenario/load.js';
import type { Scenario } from '../src/scenario/schema.js';
import type { StudyCell } from '../src/study/aggregate.js';
import { runDir, runStudy, type StudyResult } from '../src/study/run-study.js';
import { mergePatch } from '../src/study/sweep.js';
import { testRedisUrl } from '../../test-support/redis.js';

// Attacks against robust strategies in small real runs (all the real parts), made a study of two
// seeds: Krum's exclusion of the attackers is read back from the signed round log and from
// metrics.json, and the study averages the backdoor accuracy and the defences' precision and
// recall over the seeds, as it averages accuracy.

/** A built-in scenario at test size: 10 devices, all selected, 2 rounds of 3 local steps, one base model. */
const small = (name: string): Scenario =>
  validateScenario(
    mergePatch(loadScenario(name), {
      devices: 10,
      devicesPerRound: 10,
      minReports: 5,
      rounds: 2,
      seeds: { model: 1, data: 1 },
      training: { maxSteps: 3 },
      partition: { maxExamplesPerDevice: 60 },
    }),
  );

const SEEDS = [1, 2];
const KRUM = { label: 'sign-flip vs Krum', slug: 'krum', scenario: small('attack-krum') };
const BACKDOOR = {
  label: 'backdoor vs trimmed mean',
  slug: 'backdoor',
  scenario: small('attack-backdoor-trimmed-mean'),
};

const dir = mkdtempSync(join(tmpdir(), 'flotilla-robust-attacks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let study: StudyResult;
beforeAll(async () => {
  study = await runStudy({
    outDir: join(dir, 'study'),
    cacheDir: join(dir, 'cache'),
    redisUrl: testRedisUrl(),
    threads: 2,
    progress: false,
    log: () => undefined,
    title: 'robust strategies under attack',
    configurations: [KRUM, BACKDOOR],
    seeds: SEEDS,
  });
}, 900_000);

const runOf = (slug: string, seed: number): RunMetrics => {
  const path = join(runDir(join(dir, 'study'), slug, seed), 'metrics.json');
  const run = (JSON.parse(readFileSync(path, 'utf8')) as { runs: RunMetrics[] }).runs[0];
  if (run === undefined) throw new Error(`${path} has no run`);
  return run;
};

const aggregations = (slug: string, seed: number) =>
  readFileSync(defaultRoundLogPath(join(runDir(join(dir, 'study'), slug, seed), 'state')), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => (JSON.parse(line) as { event?: unknown }).event)
    // Signed tree-head lines carry no event.
    .filter((event) => event !== undefined)
    .map((event) => RoundLogEventSchema.parse(event))
    .filter((event): event is RoundLogEvent & { type: 'aggregation' } => event.type === 'aggregation');

const cellOf = (label: string): StudyCell => {
  const cell = study.cells.find((c) => c.label === label);
  if (cell === undefined) throw new Error(`no cell ${label}`);
  return cell;
};

const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;

describe('Krum against sign-flip attackers, end to end', () => {
  it.each(SEEDS)(
    "seed %i: the signed round log gives every attacker's update weight 0, and metrics.json counts them excluded",
    (seed) => {
      const run = runOf('krum', seed);
      const attackers = new Set(run.attack?.attackers.map((a) => a.pseudonym));
      // 10 devices, 20% Byzantine.
      expect(attackers.size).toBe(2);
      const logged = aggregations('krum', seed);
      expect(logged.length).toBeGreaterThan(0);
      for (const event of logged) {
        expect(event.strategy).toBe('krum');
        // Krum (Blanchard et al. 2017) keeps exactly one update, an honest one here: the flipped
        // updates point away from the honest cluster, so their nearest-neighbour score is the worst.
        const kept = event.participants.filter((p) => p.weight > 0);
        expect(kept).toHaveLength(1);
        expect(attackers.has(kept[0]?.device ?? '')).toBe(false);
        for (const p of event.participants) if (attackers.has(p.device)) expect(p.weight).toBe(0);
      }
      // metrics.json's ground truth, round by round, is what the log says.
      const rounds = run.attack?.rounds ?? [];
      expect(rounds).toHaveLength(logged.length);
      for (const [i, event] of logged.entries()) {
        const attackerUpdates = event.participants.filter((p) => attackers.has(p.device)).length;
        expect(rounds[i]).toMatchObject({
          attackerUpdates,
          attackersExcluded: attackerUpdates,
          honestUpdates: event.participants.length - attackerUpdates,
          honestExcluded: event.participants.length - attackerUpdates - 1,
        });
      }
      expect(run.attack?.total.attackerUpdates).toBeGreaterThan(0);
      expect(run.attack?.total.recall).toBe(1);
    },
  );

  it("the study's round logs all verified, every retained aggregate recomputed from the deltas", () => {
    expect(study.cells.map((c) => c.unverified)).toEqual([0, 0]);
    expect(study.ran).toBe(4);
  });
});

describe('a study of attacked runs', () => {
  it('averages the precision and recall of the defences over the seeds, with 95% intervals', () => {
    const cell = cellOf(KRUM.label);
    const precisions = SEEDS.map((seed) => runOf('krum', seed).attack?.total.precision ?? Number.NaN);
    expect(cell.runs.attackPrecision?.n).toBe(2);
    expect(cell.runs.attackPrecision?.mean).toBeCloseTo(mean(precisions), 12);
    for (const p of precisions) {
      expect(p).toBeGreaterThanOrEqual(cell.runs.attackPrecision?.low ?? Number.NaN);
      expect(p).toBeLessThanOrEqual(cell.runs.attackPrecision?.high ?? Number.NaN);
    }
    // Recall 1 in both runs: mean 1, zero width.
    expect(cell.runs.attackRecall).toMatchObject({ n: 2, mean: 1, halfWidth: 0 });
  });

  it('averages the backdoor accuracy, per round and of the final model', () => {
    const cell = cellOf(BACKDOOR.label);
    const runs = SEEDS.map((seed) => runOf('backdoor', seed));
    expect(runs.map((r) => r.attack?.attack)).toEqual(['backdoor', 'backdoor']);
    const finals = runs.map((r) => r.metrics.at(-1)?.backdoorAccuracy ?? Number.NaN);
    expect(cell.runs.finalBackdoorAccuracy?.mean).toBeCloseTo(mean(finals), 12);
    for (const round of cell.rounds) {
      const values = runs.map(
        (r) => r.metrics.find((m) => m.round === round.round)?.backdoorAccuracy ?? Number.NaN,
      );
      expect(round.values.backdoorAccuracy?.mean).toBeCloseTo(mean(values), 12);
      for (const v of values) {
        expect(v).toBeGreaterThanOrEqual(round.values.backdoorAccuracy?.low ?? Number.NaN);
        expect(v).toBeLessThanOrEqual(round.values.backdoorAccuracy?.high ?? Number.NaN);
      }
    }
    // Krum's runs have no backdoor: no backdoor figures in their cell.
    expect(cellOf(KRUM.label).runs.finalBackdoorAccuracy).toBeNull();
  });

  it("shows them in the study's report", () => {
    const markdown = readFileSync(study.report.markdown, 'utf8');
    for (const column of ['backdoor accuracy', 'attack precision', 'attack recall'])
      expect(markdown).toContain(column);
    expect(markdown).toContain('Backdoor accuracy by round');
  });
});
