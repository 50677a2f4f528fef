import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DetectionCounts } from '../report/attack-metrics.js';
import { parseScenario } from '../scenario/load.js';
import { aggregateRuns } from './aggregate.js';
import { OUTCOME_FILE, readOutcome, scenarioDigest, type RunOutcome } from './run-outcome.js';

// Student t quantiles t(0.975, df) from the NIST/SEMATECH e-Handbook table (1.3.6.7.2).
const T_975 = { 1: 12.706, 2: 4.303 };

const detection = (precision: number | null, recall: number | null): DetectionCounts => ({
  attackerUpdates: 4,
  honestUpdates: 16,
  attackersFlagged: 0,
  honestFlagged: 0,
  attackersExcluded: 4,
  honestExcluded: 12,
  attackersCaught: 4,
  honestCaught: 12,
  attackersRefused: 0,
  honestRefused: 0,
  precision,
  recall,
});

const outcome = (seed: number, backdoor: number[], attack: DetectionCounts | null): RunOutcome => ({
  seed,
  scenarioDigest: '0'.repeat(64),
  backend: 'cpu',
  baseDigest: 'b'.repeat(64),
  metrics: backdoor.map((b, round) => ({
    round,
    accuracy: 0.5,
    loss: 1,
    backdoorAccuracy: b,
    participants: round === 0 ? 0 : 10,
    refused: {},
    bytesUp: 0,
    bytesDown: 0,
    epsilon: null,
    decision: 'COMMITTED',
    reasons: [],
    timings: {},
  })),
  perDevice: null,
  stopped: null,
  attack,
  logVerified: true,
  wallMs: 1000,
  setupMs: 100,
});

describe('studies of attacked runs', () => {
  it('average backdoor accuracy, precision and recall over the seeds with Student t intervals', () => {
    const cell = aggregateRuns('attacked', [
      outcome(1, [0.01, 0.2, 0.3], detection(0.6, 1)),
      outcome(2, [0.02, 0.3, 0.4], detection(0.7, 1)),
      outcome(3, [0.03, 0.4, 0.5], detection(0.8, 0.5)),
    ]);
    // precision: mean 0.7, sd 0.1, half width t(0.975, 2) · 0.1 / √3.
    const precision = cell.runs.attackPrecision;
    expect(precision?.n).toBe(3);
    expect(precision?.mean).toBeCloseTo(0.7, 12);
    expect(precision?.sd).toBeCloseTo(0.1, 12);
    expect(precision?.halfWidth).toBeCloseTo((T_975[2] * 0.1) / Math.sqrt(3), 3);
    // recall: 1, 1, 0.5: mean 5/6, sd √(1/12).
    expect(cell.runs.attackRecall?.mean).toBeCloseTo(5 / 6, 12);
    expect(cell.runs.attackRecall?.halfWidth).toBeCloseTo((T_975[2] * Math.sqrt(1 / 12)) / Math.sqrt(3), 3);
    // The final model's backdoor accuracy, and the band round by round.
    expect(cell.runs.finalBackdoorAccuracy?.mean).toBeCloseTo(0.4, 12);
    expect(cell.rounds.map((r) => r.values.backdoorAccuracy?.mean)).toEqual([
      expect.closeTo(0.02, 12),
      expect.closeTo(0.3, 12),
      expect.closeTo(0.4, 12),
    ]);
  });

  it('leave out runs where nothing was caught (precision undefined), and runs without an attack', () => {
    const cell = aggregateRuns('mixed', [
      outcome(1, [0, 0.1], detection(null, 0)),
      outcome(2, [0, 0.1], detection(0.5, 0.25)),
      outcome(3, [0, 0.1], detection(1, 0.75)),
      outcome(4, [0, 0.1], null),
    ]);
    expect(cell.runs.attackPrecision).toMatchObject({ n: 2, mean: 0.75 });
    expect(cell.runs.attackPrecision?.halfWidth).toBeCloseTo((T_975[1] * Math.sqrt(0.125)) / Math.sqrt(2), 2);
    expect(cell.runs.attackRecall).toMatchObject({ n: 3 });
    expect(cell.runs.attackRecall?.mean).toBeCloseTo(1 / 3, 12);
    const clean = aggregateRuns('clean', [outcome(1, [], null)]);
    expect([clean.runs.attackPrecision, clean.runs.attackRecall, clean.runs.finalBackdoorAccuracy]).toEqual([
      null,
      null,
      null,
    ]);
  });
});

describe('run outcomes written before attacks were kept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-outcome-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('still count as done when a study resumes (attack: null)', () => {
    const scenario = parseScenario('name: old\n');
    const old: Record<string, unknown> = {
      ...outcome(1, [0.5], null),
      scenarioDigest: scenarioDigest(scenario),
    };
    delete old.attack;
    writeFileSync(join(dir, OUTCOME_FILE), JSON.stringify(old));
    expect(readOutcome(dir, scenario)).toMatchObject({ seed: 1, attack: null });
  });
});
