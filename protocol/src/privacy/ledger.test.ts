import { describe, expect, it } from 'vitest';
import type { DpRelease, RoundLogEvent } from '../round-log/events.js';
import { DEFAULT_ORDERS } from './orders.js';
import { effectiveNoiseMultiplier, epsilonOfRho, privacyLedger, releasesRho } from './ledger.js';

// Published references:
// - TF Privacy / dp_accounting rdp_privacy_accountant_test.py (test_compute_epsilon_delta_gaussian):
//   the Gaussian mechanism with noise multiplier 4.530877117 is (1, 1e-6)-DP through RDP. Four
//   unamplified rounds at twice that noise compose to the same Gaussian.
// - Flower's compute_adaptive_noise_params (dp-published.json `adaptive_noise_split`): z = 3 with
//   σ_b = 5 leaves z_Δ = 3.144854510165755 for the updates; the two queries compose back to z = 3.
const Z_ONE = 4.530877117;
const DELTA = 1e-6;
const digest = (n: number) => n.toString(16).padStart(64, '0');
const dev = (n: number) => `dev_${n.toString(16).padStart(32, '0')}`;

const gaussian = (z: number, clip = 1): DpRelease[] => [
  { query: 'update-sum', sensitivity: clip, noiseStd: z * clip },
];

/** ε after `rounds` rounds of `releases` each (the value an honest worker records). */
function honestEpsilon(releases: DpRelease[], rounds: number): number {
  return epsilonOfRho({
    rho: rounds * releasesRho(releases),
    orders: DEFAULT_ORDERS,
    delta: DELTA,
    conversion: 'improved',
  }).epsilon;
}

function aggregation(n: number, releases: DpRelease[], epsilon: number | null, charged = n): RoundLogEvent {
  return {
    type: 'aggregation',
    taskId: 't',
    roundId: `t:${n}`,
    strategy: 'fedavg',
    strategyOptions: {},
    loraRule: 'ffa',
    participants: [{ device: dev(n), blobDigest: digest(n), weight: 1 }],
    clipNorm: 1,
    noiseMultiplier: 1,
    epsilon,
    delta: DELTA,
    privacy: {
      accountant: 'rdp-gaussian',
      relation: 'zero-out',
      sampling: 'fixed-size',
      amplification: 'none',
      orders: [...DEFAULT_ORDERS],
      conversion: 'improved',
      releases,
      chargedRounds: charged,
    },
    aggregateDigest: digest(1000 + n),
    deltasRetainedUntil: null,
  };
}

const rejection = (n: number): RoundLogEvent => ({
  type: 'rejection',
  taskId: 't',
  roundId: `t:${n}`,
  reasons: ['x'],
});

const BUDGET = 1.0000005;

const opened = (n: number): RoundLogEvent => ({
  type: 'round.opened',
  taskId: 't',
  roundId: `t:${n}`,
  goalCount: 3,
  minReports: 2,
  clipNorm: 1,
  parentVersion: 0,
  deadline: 0,
  dp: { epsilonBudget: BUDGET, delta: DELTA, noiseMultiplier: 2 * Z_ONE },
});

/** Four honest rounds at z = 2·4.530877117, the second promoted and the others rejected. */
function honestLog(): RoundLogEvent[] {
  const releases = gaussian(2 * Z_ONE);
  const events: RoundLogEvent[] = [];
  for (let n = 1; n <= 4; n++) {
    events.push(opened(n));
    events.push(aggregation(n, releases, honestEpsilon(releases, n)));
    events.push(
      n === 2
        ? {
            type: 'promotion',
            taskId: 't',
            roundId: 't:2',
            version: 1,
            parentVersion: 0,
            manifestDigest: digest(7),
            adapterDigest: digest(8),
          }
        : rejection(n),
    );
  }
  return events;
}

const ledgerOf = (events: RoundLogEvent[]) =>
  privacyLedger(
    events.map((event, seq) => ({ seq, event })),
    't',
  );

describe('privacyLedger: ε recomputed from the round log alone', () => {
  it('gives the published ε = 1 at δ = 1e-6 after four rounds, rejected rounds included', () => {
    const ledger = ledgerOf(honestLog());
    expect(ledger.problems).toEqual([]);
    expect(ledger.rounds.map((r) => r.decision)).toEqual(['rejected', 'promoted', 'rejected', 'rejected']);
    expect(Math.abs(ledger.epsilon - 1)).toBeLessThan(1e-6);
    expect(ledger.rounds.map((r) => r.chargedRounds)).toEqual([1, 2, 3, 4]);
  });

  it("composes adaptive clipping's two queries back into the task's noise multiplier (z = 3)", () => {
    const split: DpRelease[] = [
      { query: 'update-sum', sensitivity: 2, noiseStd: 3.144854510165755 * 2 },
      { query: 'unclipped-count', sensitivity: 0.5, noiseStd: 5 },
    ];
    expect(releasesRho(split)).toBeCloseTo(1 / (2 * 3 * 3), 14);
    expect(effectiveNoiseMultiplier(split)).toBeCloseTo(3, 12);
    const ledger = ledgerOf([aggregation(1, split, honestEpsilon(gaussian(3), 1))]);
    expect(ledger.problems).toEqual([]);
  });

  it('charges a retried, identical aggregation record once', () => {
    const events = honestLog();
    events.splice(2, 0, events[1] as RoundLogEvent);
    const ledger = ledgerOf(events);
    expect(ledger.problems).toEqual([]);
    expect(ledger.rounds).toHaveLength(4);
  });

  describe('tampering', () => {
    it('a lowered ε', () => {
      const events = honestLog();
      const third = events[7];
      if (third?.type !== 'aggregation') throw new Error('fixture');
      events[7] = { ...third, epsilon: (third.epsilon ?? 0) * 0.9 };
      expect(ledgerOf(events).problems.map((p) => [p.roundId, p.code])).toEqual([
        ['t:3', 'EPSILON_MISMATCH'],
      ]);
    });

    it('a noised aggregation left out of the log', () => {
      const events = honestLog().filter((e) => !(e.type === 'aggregation' && e.roundId === 't:2'));
      const codes = ledgerOf(events).problems.map((p) => [p.roundId, p.code]);
      expect(codes).toContainEqual(['t:3', 'CHARGE_COUNT']);
      expect(codes).toContainEqual(['t:3', 'EPSILON_MISMATCH']);
    });

    it('noise removed (z 2 -> 0) while ε is still reported', () => {
      const events = honestLog();
      const second = events[4];
      if (second?.type !== 'aggregation' || !second.privacy) throw new Error('fixture');
      events[4] = { ...second, privacy: { ...second.privacy, releases: gaussian(0) } };
      const ledger = ledgerOf(events);
      expect(ledger.problems.map((p) => p.code)).toEqual(
        expect.arrayContaining(['NO_NOISE', 'NOISE_BELOW_POLICY', 'EPSILON_MISMATCH']),
      );
      expect(ledger.epsilon).toBe(Infinity);
    });

    it('less noise than the round promised, with ε recomputed to match', () => {
      const events = honestLog();
      const weak = gaussian(Z_ONE);
      events[10] = aggregation(
        4,
        weak,
        epsilonOfRho({
          rho: 3 * releasesRho(gaussian(2 * Z_ONE)) + releasesRho(weak),
          orders: DEFAULT_ORDERS,
          delta: DELTA,
          conversion: 'improved',
        }).epsilon,
      );
      expect(ledgerOf(events).problems.map((p) => [p.roundId, p.code])).toEqual([
        ['t:4', 'NOISE_BELOW_POLICY'],
        ['t:4', 'OVER_BUDGET'],
      ]);
    });

    it('a noised aggregate charged past the budget', () => {
      const events = honestLog();
      const releases = gaussian(2 * Z_ONE);
      events.push(opened(5), aggregation(5, releases, honestEpsilon(releases, 5)), rejection(5));
      expect(ledgerOf(events).problems.map((p) => [p.roundId, p.code])).toEqual([['t:5', 'OVER_BUDGET']]);
    });

    it('a round that released two different aggregates', () => {
      const events = honestLog();
      const first = events[1];
      if (first?.type !== 'aggregation') throw new Error('fixture');
      events.splice(2, 0, { ...first, aggregateDigest: digest(99) });
      expect(ledgerOf(events).problems.map((p) => p.code)).toContain('RELEASED_TWICE');
    });

    it('an ε without the parameters it was charged with', () => {
      const events = honestLog();
      const first = events[1];
      if (first?.type !== 'aggregation') throw new Error('fixture');
      const { privacy: _privacy, ...bare } = first;
      events[1] = bare;
      const ledger = ledgerOf(events);
      expect(ledger.problems[0]?.code).toBe('NOT_RECOMPUTABLE');
      expect(ledger.epsilon).toBeNaN();
    });
  });
});
