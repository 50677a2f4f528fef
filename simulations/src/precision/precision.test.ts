import { describe, expect, it } from 'vitest';
import type { SimulationResult } from '../runner/run-simulation.js';
import { aggregation, audit, dev, refused } from '../attacks/round-log.fixture.js';
import { analyzeRun } from './analyze.js';
import { checkTargets, summarizeCases, type CaseRun } from './report.js';
import { precisionSuite } from './suite.js';

const result = (byzantine: number[]): SimulationResult =>
  ({
    metrics: [{ accuracy: 0.5 }, { accuracy: 0.8 }],
    stopped: null,
    devices: [1, 2, 3, 4, 5].map((d) => ({
      deviceId: `device-${d}`,
      pseudonym: dev(d),
      byzantine: byzantine.includes(d),
    })),
  }) as unknown as SimulationResult;

describe('audit precision', () => {
  it('counts flagged honest and attacker updates, and rejections the holdout contradicts', () => {
    const events = [
      aggregation(1, [1, 2, 3, 4]),
      audit(1, [4]),
      aggregation(2, [1, 2, 4, 5]),
      audit(2, [1, 4, 5], { decision: 'fail', holdoutBetterBeyondNoise: 1 }),
      // Device 5's unclipped update of round 3 is refused (twice: a retry counts once).
      refused(3, 5),
      refused(3, 5),
      aggregation(3, [1, 2, 3]),
      audit(3, []),
    ];
    expect(analyzeRun(result([4, 5]), events)).toEqual({
      honestUpdates: 8,
      honestFlagged: 1,
      attackerUpdates: 3,
      attackerFlagged: 3,
      attackerRefused: 1,
      audited: 3,
      rejected: 1,
      rejectedImproved: 1,
      finalAccuracy: 0.8,
      stopped: null,
    });
  });

  it('checks each target, the accuracy against the attack-free run of the same seed', () => {
    const base = { audited: 10, rejected: 0, rejectedImproved: 0, stopped: null, attackerRefused: 0 };
    const runs: CaseRun[] = [
      {
        name: 'honest-x',
        kind: 'honest',
        seed: 1,
        logVerified: true,
        precision: {
          ...base,
          honestUpdates: 100,
          honestFlagged: 5,
          attackerUpdates: 0,
          attackerFlagged: 0,
          finalAccuracy: 0.6,
        },
      },
      {
        name: 'attack-free',
        kind: 'attack-free',
        seed: 1,
        logVerified: true,
        precision: {
          ...base,
          honestUpdates: 100,
          honestFlagged: 0,
          attackerUpdates: 0,
          attackerFlagged: 0,
          finalAccuracy: 0.8,
        },
      },
      {
        name: 'flip',
        kind: 'attack',
        seed: 1,
        logVerified: false,
        precision: {
          ...base,
          honestUpdates: 80,
          honestFlagged: 0,
          attackerUpdates: 20,
          attackerFlagged: 18,
          finalAccuracy: 0.71,
        },
      },
      {
        // 16 of 20 flagged, and 20 more refused at the clip bound: 36 of 40 stopped.
        name: 'scale',
        kind: 'attack',
        seed: 1,
        logVerified: true,
        precision: {
          ...base,
          honestUpdates: 80,
          honestFlagged: 0,
          attackerUpdates: 20,
          attackerFlagged: 16,
          attackerRefused: 20,
          finalAccuracy: 0.8,
        },
      },
    ];
    const checks = checkTargets(summarizeCases(runs));
    expect(checks.map((c) => [c.target, c.measured, c.pass])).toEqual([
      ['honest-x: honest updates flagged <= 5.0%', '5 of 100 (5.0%)', true],
      ['honest-x: no rejected round whose candidate is better beyond noise', '0 of 0 rejected rounds', true],
      ["flip: attackers' updates flagged (or refused) >= 95.0%", '18 / 20 (90.0%)', false],
      ['flip: final accuracy >= 90.0% of the attack-free run', '88.8%', false],
      ["scale: attackers' updates flagged (or refused) >= 95.0%", '36 / 40 (90.0%, 20 refused)', false],
      ['scale: final accuracy >= 90.0% of the attack-free run', '100.0%', true],
      ['every run: its round log verifies, aggregates recomputed', '3 of 4', false],
    ]);
  });

  it('defines honest, attack-free and attacked cases at both sizes', () => {
    for (const size of ['full', 'reduced'] as const) {
      const suite = precisionSuite(size);
      expect(suite.map((c) => c.name)).toEqual([
        'honest-dirichlet-0.1',
        'honest-2-labels',
        'attack-free',
        'sign-flip-20',
        'scaling-20',
        'little-is-enough-20',
        'sign-flip-30',
        'scaling-30',
        'little-is-enough-30',
      ]);
      const flip = suite.find((c) => c.name === 'sign-flip-30')?.scenario;
      expect(flip?.behaviour).toMatchObject({ byzantineFraction: 0.3, attack: 'sign-flip', attackScale: 4 });
      expect(flip?.strategy.name).toBe('median');
      expect(flip?.clipNorm).toBe(100);
      expect(suite.find((c) => c.name === 'scaling-20')?.scenario.behaviour.attackerClips).toBe(false);
    }
    // At the built-in scenarios' bound: the attacked runs and their reference, not the honest ones.
    const clipped = precisionSuite('full', { clipNorm: 1 });
    expect(clipped.map((c) => c.scenario.clipNorm)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1]);
  });
});
