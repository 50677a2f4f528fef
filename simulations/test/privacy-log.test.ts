import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SimulationResult } from '../src/runner/run-simulation.js';
import { tempDirs } from '../../test-support/temp-dirs.js';
import { ffaFleet, flotilla, simulate } from './support/index.js';

// ε recomputed from the round log alone, on a real run (coordinator, BullMQ worker, devices
// training over sockets), rejected rounds included, against a published value.
//
// Reference: the Gaussian mechanism with noise multiplier 4.530877117 is (1, 1e-6)-DP through RDP
// (TF Privacy / dp_accounting rdp_privacy_accountant_test.py, test_compute_epsilon_delta_gaussian).
// Four unamplified rounds at twice that noise compose to the same mechanism, so the task has spent
// ε = 1 at δ = 1e-6 after its fourth noised aggregate, whatever became of the candidates; a fifth
// would cost more than the budget 1.0000005, so the worker computes nothing and stops the task.
const Z_ROUND = 2 * 4.530877117;
const scenario = ffaFleet({
  name: 'dp-log',
  seed: 11,
  rounds: 6,
  dp: { noiseMultiplier: Z_ROUND, delta: 1.0e-6, epsilonBudget: 1.0000005 },
});

const tempDir = tempDirs('flotilla-dp-log-');

interface LedgerJson {
  ok: boolean;
  epsilon: number;
  recordedEpsilon: number;
  delta: number;
  rounds: Array<{ roundId: string; decision: string; epsilon: number; recordedEpsilon: number }>;
  problems: Array<{ code: string }>;
}

describe('flotilla privacy epsilon --log on a real DP run', () => {
  let result: SimulationResult;

  it('charges every noised aggregate, shows ε per round in the report, and stops at the budget', async () => {
    result = await simulate({ scenario, stateDir: tempDir() });
    const rounds = result.metrics.slice(1);
    // Four charged rounds, then the refused fifth: the task stops instead of looping to round 6.
    expect(rounds).toHaveLength(5);
    expect(result.stopped).toMatch(/^privacy budget exhausted: computing this round's noised aggregate/);
    expect(rounds[4]?.decision).toBe('REJECTED');
    expect(rounds[4]?.reasons?.[0]).toBe(result.stopped);
    // Noise this large wrecks the candidates: rejected, yet charged.
    expect(rounds.slice(0, 4).some((m) => m.decision === 'REJECTED')).toBe(true);
    const epsilons = rounds.map((m) => m.epsilon ?? Number.NaN);
    for (let k = 1; k < 4; k++) expect(epsilons[k]).toBeGreaterThan(epsilons[k - 1] ?? Infinity);
    expect(Math.abs((epsilons[3] ?? 0) - 1)).toBeLessThan(1e-6);
    expect(epsilons[4]).toBe(epsilons[3]);
  }, 400_000);

  it('recomputes the same ε from the log alone, every charged round listed', async () => {
    const { code, stdout } = await flotilla(['privacy', 'epsilon', '--log', result.roundLogPath, '--json']);
    expect(code).toBe(0);
    const ledger = JSON.parse(stdout) as LedgerJson;
    expect(ledger.ok).toBe(true);
    expect(ledger.problems).toEqual([]);
    expect(ledger.rounds).toHaveLength(4);
    const accountant = result.metrics.at(-1)?.epsilon ?? Number.NaN;
    expect(Math.abs(ledger.epsilon / accountant - 1)).toBeLessThan(1e-12);
    expect(Math.abs(ledger.epsilon - 1)).toBeLessThan(1e-6);
    const decisions = result.metrics.slice(1, 5).map((m) => m.decision.toLowerCase());
    expect(ledger.rounds.map((r) => (r.decision === 'promoted' ? 'committed' : r.decision))).toEqual(
      decisions,
    );

    const text = await flotilla([
      'privacy',
      'epsilon',
      '--log',
      result.roundLogPath,
      '--task',
      result.taskId,
    ]);
    expect(text.code, text.stdout).toBe(0);
    expect(text.stdout).toContain('after 4 charged round(s)');
    expect(text.stdout).toContain('no amplification by sampling');
    expect(text.stdout).toContain(
      'holds against: readers of the log, the audit API, the dashboard and the fleet',
    );
    expect(text.stdout).toContain('not the operator');
  });

  it('publishes no per-update value in the log: commitments, no norms, sizes, flags or counts', () => {
    const events = readFileSync(result.roundLogPath, 'utf8')
      .trim()
      .split('\n')
      .flatMap((line) => {
        // Tree heads carry no event.
        const event = (JSON.parse(line) as { event?: Record<string, unknown> }).event;
        return event ? [event] : [];
      });
    const accepted = events.filter((e) => e.type === 'update.accepted');
    expect(accepted.length).toBeGreaterThanOrEqual(12);
    for (const e of accepted)
      expect(e).toMatchObject({ norm: null, clipped: null, bytes: null, numExamples: null });
    for (const e of events.filter((x) => x.type === 'aggregation'))
      expect((e.participants as Array<{ weight: number }>).map((p) => p.weight)).toEqual([1, 1, 1, 1]);
  });

  it('fails on a log whose recorded ε was lowered', async () => {
    const lines = readFileSync(result.roundLogPath, 'utf8').trim().split('\n');
    const tampered = lines.map((line) => {
      const record = JSON.parse(line) as { event?: { type: string; roundId?: string; epsilon?: number } };
      if (record.event?.type === 'aggregation' && record.event.roundId === `${result.taskId}:4`)
        record.event.epsilon = 0.5;
      return JSON.stringify(record);
    });
    const file = join(tempDir(), 'tampered.jsonl');
    writeFileSync(file, `${tampered.join('\n')}\n`);
    const { code, stdout } = await flotilla(['privacy', 'epsilon', '--log', file, '--json']);
    expect(code).toBe(1);
    expect((JSON.parse(stdout) as LedgerJson).problems.map((p) => p.code)).toEqual(['EPSILON_MISMATCH']);
  });
});
