import { AuditPolicySchema } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { RdpAccountant } from '../privacy/accountant.js';
import { auditRound, type AuditResult } from './audit-round.js';
import { l2Norm, type TensorList } from './cosine.js';
import { coordinateMedian, updateStats } from './reference.js';
import { isFlagged } from './update-screen.js';
import {
  honestRound,
  meanAndStd,
  meanOf,
  nonIidRound,
  roundWithOutliers,
  scaled,
} from './audit-fixtures.fixture.js';

const policy = AuditPolicySchema.parse({});
const flaggedIndices = (r: AuditResult) => r.findings.filter(isFlagged).map((f) => f.index);

/** Per-example holdout results where the candidate wins `wins` discordant pairs and loses `losses`. */
function pairedHoldout(wins: number, losses: number, n = 1000) {
  const candidate = new Uint8Array(n);
  const current = new Uint8Array(n);
  for (let i = 0; i < n / 2; i++) candidate[i] = current[i] = 1;
  for (let i = 0; i < wins; i++) candidate[n / 2 + i] = 1;
  for (let i = 0; i < losses; i++) current[n / 2 + wins + i] = 1;
  const acc = (c: Uint8Array) => c.reduce((s, v) => s + v, 0) / n;
  return {
    candidate: { accuracy: acc(candidate), correct: candidate },
    current: { accuracy: acc(current), correct: current },
  };
}

describe('auditRound: the per-update screen', () => {
  it('flags nothing in honest rounds, IID or not', () => {
    for (const seed of ['a', 'b', 'c', 'd', 'e']) {
      const iid = honestRound(10, seed);
      const result = auditRound({ updates: iid, aggregate: meanOf(iid) }, policy);
      expect(flaggedIndices(result), seed).toEqual([]);
      expect(result.decision).toBe('promote');
      const skewed = nonIidRound(10, seed);
      expect(
        flaggedIndices(auditRound({ updates: skewed, aggregate: meanOf(skewed) }, policy)),
        seed,
      ).toEqual([]);
    }
  });

  it('flags an update scaled by 100 as a norm outlier, with a reason', () => {
    const updates = roundWithOutliers(10, 'scaled', { indices: [3], factor: 100 });
    const result = auditRound(
      { updates, aggregate: meanOf(updates), labels: updates.map((_, i) => `device-${i}`) },
      policy,
    );
    expect(flaggedIndices(result)).toEqual([3]);
    expect(result.findings[3]?.normOutlier).toBe(true);
    expect(result.findings[3]?.normZ).toBeGreaterThan(policy.madThreshold);
    expect(result.reasons.some((r) => r.startsWith('device-3: norm') && r.includes('is an outlier'))).toBe(
      true,
    );
    expect(result.summary.flaggedFraction).toBeCloseTo(0.1, 12);
  });

  it('flags a sign-flipped update as pointing away, with a reason', () => {
    const updates = roundWithOutliers(10, 'flip', { indices: [7], factor: -1 });
    const result = auditRound({ updates, aggregate: meanOf(updates) }, policy);
    expect(flaggedIndices(result)).toEqual([7]);
    expect(result.findings[7]?.lowCosine).toBe(true);
    expect(result.findings[7]?.cosine).toBeLessThan(-0.5);
    expect(
      result.reasons.some((r) => r.startsWith("update #7: points away from the round's robust reference")),
    ).toBe(true);
  });

  it('flags only the attackers when 3 of 10 send unclipped −4·Δ (the mean of the others points backwards)', () => {
    // With a leave-one-out mean as the reference, every honest update pointed away from the
    // others (6 honest + 3·(−4) honest < 0) and every attacker was a norm outlier: 10 of 10.
    const updates = roundWithOutliers(10, 'unclipped', { indices: [1, 4, 8], factor: -4 });
    const result = auditRound({ updates, aggregate: meanOf(updates) }, policy);
    expect(flaggedIndices(result)).toEqual([1, 4, 8]);
    for (const i of [1, 4, 8]) expect(result.findings[i]?.lowCosine).toBe(true);
    expect(result.decision).toBe('promote'); // 30% flagged, limit 34%
  });

  it('flags clipped sign flips that are half the round against the last promoted step', () => {
    // Every update clipped to norm 1, as at C = 1: no norm can tell, and with 5 of 10 flipped the
    // round's median is as much theirs. The last promoted step (the honest direction of an earlier
    // round, here the mean of another honest round) is a reference they do not control.
    const unit = (u: TensorList): TensorList => scaled(u, 1 / l2Norm(u));
    const updates = honestRound(10, 'half-flip').map(unit);
    for (const i of [5, 6, 7, 8, 9]) updates[i] = scaled(updates[i] ?? [], -1);
    const alone = auditRound({ updates, aggregate: meanOf(updates) }, policy);
    expect(flaggedIndices(alone)).toEqual([]);
    const previousStep = meanOf(honestRound(10, 'half-flip-previous').map(unit));
    const withStep = auditRound({ updates, aggregate: meanOf(updates), previousStep }, policy);
    expect(flaggedIndices(withStep)).toEqual([5, 6, 7, 8, 9]);
    expect(withStep.findings[5]?.stepCosine).toBeLessThan(0);
    expect(withStep.reasons.some((r) => r.includes('and against the last promoted step (cosine'))).toBe(true);
  });

  it("flags scaled updates that are half the round against the last promoted round's norms", () => {
    const updates = roundWithOutliers(10, 'half', { indices: [5, 6, 7, 8, 9], factor: 10 });
    // Half the round: its median norm is between the two groups, and nothing stands out.
    const alone = auditRound({ updates, aggregate: meanOf(updates) }, policy);
    expect(flaggedIndices(alone)).toEqual([]);
    // The last promoted round's unflagged updates had norms around 0.55.
    const honest = honestRound(10, 'previous');
    const previous = auditRound({ updates: honest, aggregate: meanOf(honest) }, policy).summary.normScale;
    expect(previous?.median).toBeGreaterThan(0.4);
    const withHistory = auditRound({ updates, aggregate: meanOf(updates), normHistory: previous }, policy);
    expect(flaggedIndices(withHistory)).toEqual([5, 6, 7, 8, 9]);
    expect(withHistory.findings[5]?.normHistoryZ).toBeGreaterThan(policy.madThreshold);
    expect(withHistory.reasons.some((r) => r.includes("against the last promoted round's"))).toBe(true);
  });

  it('flags the identical crafted updates of "a little is enough", and a lone one sent at the mean', () => {
    const honest = honestRound(8, 'alie');
    const { mean, std } = meanAndStd(honest);
    // Baruch et al. 2019 with n = 10, m = 2: z_max = Φ⁻¹(0.6) = 0.2533.
    const crafted = mean.map((t, k) => Float32Array.from(t, (v, j) => v - 0.2533 * (std[k]?.[j] ?? 0)));
    const two = auditRound({ updates: [...honest, crafted, crafted], aggregate: meanOf(honest) }, policy);
    expect(flaggedIndices(two)).toEqual([8, 9]);
    expect(two.findings[8]?.duplicate).toBe(true);
    expect(two.reasons.some((r) => r.includes("near-identical to another device's update"))).toBe(true);
    // m = 1: z_max = Φ⁻¹(0.5) = 0, the attacker sends the honest mean itself.
    const nine = honestRound(9, 'alie-1');
    const lone = auditRound({ updates: [...nine, meanAndStd(nine).mean], aggregate: meanOf(nine) }, policy);
    expect(flaggedIndices(lone)).toEqual([9]);
    expect(lone.findings[9]?.tooCentral).toBe(true);
  });

  it('gives the same findings from precomputed stats (the shard jobs) as from the updates', () => {
    const updates: TensorList[] = honestRound(12, 'precomputed');
    updates[2] = scaled(updates[2] ?? [], -1);
    updates[9] = scaled(updates[9] ?? [], 100);
    const labels = updates.map((_, i) => `device-${i}`);
    const direct = auditRound({ updates, aggregate: meanOf(updates), labels }, policy);
    const reference = coordinateMedian(updates);
    const viaStats = auditRound(
      {
        stats: {
          perUpdate: updateStats(updates, reference),
          referenceNorm: l2Norm(reference),
          dimension: reference.reduce((sum, t) => sum + t.length, 0),
        },
        aggregate: meanOf(updates),
        labels,
      },
      policy,
    );
    expect(viaStats.findings).toEqual(direct.findings);
    expect(viaStats.reasons).toEqual(direct.reasons);
    expect(flaggedIndices(direct)).toEqual([2, 9]);
    expect(() =>
      auditRound(
        { updates, stats: { perUpdate: [], referenceNorm: 0, dimension: 0 }, aggregate: [] },
        policy,
      ),
    ).toThrow(/exactly one/);
  });

  it('screens nothing in a DP task and says why', () => {
    const result = auditRound(
      {
        unscreened: { count: 7, reason: 'differential privacy: not screened' },
        aggregate: [Float32Array.of(1)],
      },
      policy,
    );
    expect(result.findings).toEqual([]);
    expect(result.summary).toMatchObject({ updateCount: 7, flaggedCount: 0, norms: null });
    expect(result.checks).toContainEqual({
      code: 'screening',
      status: 'pass',
      message: 'differential privacy: not screened',
    });
    expect(result.decision).toBe('promote');
  });
});

describe('auditRound: the decision', () => {
  it('rejects when too many updates are flagged and the holdout shows no gain beyond noise', () => {
    const updates = roundWithOutliers(10, 'many', { indices: [0, 1, 2, 3], factor: -1 });
    const result = auditRound(
      { updates, aggregate: meanOf(updates), holdout: pairedHoldout(30, 25) },
      policy,
    );
    expect(flaggedIndices(result)).toEqual([0, 1, 2, 3]);
    expect(result.decision).toBe('reject');
    expect(result.reasons[0]).toBe('4 of 10 updates flagged (40%, limit 34%)');
  });

  it("does not fail a robust strategy's round for flags it is built to withstand", () => {
    const updates = roundWithOutliers(10, 'tolerated', { indices: [0, 1, 2, 3], factor: -4 });
    const median = auditRound(
      { updates, aggregate: meanOf(updates), tolerance: { strategy: 'median', updates: 4 } },
      policy,
    );
    expect(median.decision).toBe('promote');
    expect(median.checks[0]?.message).toBe(
      '4 of 10 updates flagged (40%, limit 40%: the median strategy withstands 4 of 10)',
    );
    const fedavg = auditRound(
      { updates, aggregate: meanOf(updates), tolerance: { strategy: 'fedavg', updates: 0 } },
      policy,
    );
    expect(fedavg.decision).toBe('reject');
    expect(fedavg.reasons[0]).toBe('4 of 10 updates flagged (40%, limit 34%)');
  });

  it('promotes a candidate the holdout shows better beyond noise despite its flags, and says so', () => {
    const updates = roundWithOutliers(10, 'krum', { indices: [0, 1, 2, 3], factor: -1 });
    // The Krum candidate: 48.0% -> 60.9% on the holdout.
    const result = auditRound(
      {
        updates,
        aggregate: meanOf(updates),
        holdout: {
          candidate: { accuracy: 0.609, examples: 1000 },
          current: { accuracy: 0.48, examples: 1000 },
        },
      },
      policy,
    );
    expect(result.decision).toBe('promote');
    const flagged = result.checks.find((c) => c.code === 'flagged-fraction');
    expect(flagged?.status).toBe('overridden');
    expect(flagged?.message).toBe(
      '4 of 10 updates flagged (40%, limit 34%): promoted anyway, the holdout shows the candidate better beyond noise',
    );
    expect(result.summary.improvement?.beyondNoise).toBe(true);
  });

  it('lets a holdout gain override drift, never a holdout drop or a spent budget', () => {
    const updates = honestRound(5, 'drift');
    const moduleDrift = [{ module: 'dense_1', kind: 'lora' as const, deltaNorm: 3, baseNorm: 2, drift: 1.5 }];
    const gain = auditRound(
      { updates, aggregate: meanOf(updates), moduleDrift, holdout: pairedHoldout(45, 15) },
      policy,
    );
    expect(gain.decision).toBe('promote');
    expect(gain.checks.find((c) => c.code === 'module-drift')?.status).toBe('overridden');
    const flat = auditRound(
      { updates, aggregate: meanOf(updates), moduleDrift, holdout: pairedHoldout(20, 20) },
      policy,
    );
    expect(flat.decision).toBe('reject');
    expect(flat.reasons[0]).toBe('module dense_1 (lora) drifted 1.5 from the base, above the limit 1');
    const drop = auditRound(
      {
        updates,
        aggregate: meanOf(updates),
        holdout: { candidate: { accuracy: 0.8, examples: 1000 }, current: { accuracy: 0.9, examples: 1000 } },
      },
      policy,
    );
    expect(drop.decision).toBe('reject');
    expect(drop.reasons[0]).toMatch(/holdout accuracy 90\.00% -> 80\.00%: drop 10\.00% exceeds/);
  });

  it('keeps passed checks passed in a rejected round', () => {
    const updates = honestRound(10, 'passes');
    const result = auditRound(
      {
        updates,
        aggregate: meanOf(updates),
        holdout: { candidate: { accuracy: 0.8 }, current: { accuracy: 0.9 } },
        moduleDrift: [{ module: 'dense_1', kind: 'lora', deltaNorm: 0.1, baseNorm: 1, drift: 0.1 }],
      },
      policy,
    );
    expect(result.decision).toBe('reject');
    expect(result.checks.map((c) => [c.code, c.status])).toEqual([
      ['flagged-fraction', 'pass'],
      ['module-drift', 'pass'],
      ['holdout', 'fail'],
    ]);
  });

  it('reports modules the trust region scaled back', () => {
    const updates = honestRound(5, 'trust');
    const result = auditRound(
      {
        updates,
        aggregate: meanOf(updates),
        trustRegion: [{ module: 'dense_1', drift: 1.25, scale: 0.8 }],
        moduleDrift: [{ module: 'dense_1', kind: 'lora', deltaNorm: 1, baseNorm: 1, drift: 1 }],
      },
      policy,
    );
    expect(result.decision).toBe('promote');
    expect(result.summary.trustRegionScale).toBe(0.8);
    expect(result.reasons).toContain(
      'module dense_1: the candidate drifted 1.25 from the base, above the limit 1; its offset was scaled by 0.8 onto the limit (trust region)',
    );
  });

  it('rejects with a reason, and ends the task, when the privacy budget would be exhausted', () => {
    const accountant = new RdpAccountant().step({ q: 0.05, noiseMultiplier: 1, steps: 199 });
    const next = { q: 0.05, noiseMultiplier: 1 };
    const budget = 3.5;
    expect(accountant.wouldExceed(budget, 1e-3, next)).toBe(true);
    const epsilon = accountant.epsilonAfter(next, 1e-3).epsilon;
    const updates = honestRound(10, 'budget');
    const result = auditRound(
      { updates, aggregate: meanOf(updates), privacy: { epsilon, epsilonBudget: budget, delta: 1e-3 } },
      policy,
    );
    expect(result.decision).toBe('reject');
    expect(result.terminal).toBe(true);
    expect(result.reasons[0]).toMatch(
      /^privacy budget exhausted: epsilon 3\.74\d* at delta 0\.001 would exceed the budget 3\.5$/,
    );
  });

  it('with the audit off (enforce false) records drift, flags and a holdout drop, and rejects only what cannot be promoted', () => {
    const off = { ...policy, enforce: false };
    const updates = roundWithOutliers(10, 'off', { indices: [0, 1, 2, 3], factor: -1 });
    const moduleDrift = [{ module: 'dense_1', kind: 'lora' as const, deltaNorm: 3, baseNorm: 2, drift: 1.5 }];
    const holdout = {
      candidate: { accuracy: 0.8, examples: 1000 },
      current: { accuracy: 0.9, examples: 1000 },
    };
    // The same round rejects for three reasons when the audit decides…
    expect(auditRound({ updates, aggregate: meanOf(updates), moduleDrift, holdout }, policy).decision).toBe(
      'reject',
    );
    // …and promotes with every one of them on record when it only records.
    const result = auditRound({ updates, aggregate: meanOf(updates), moduleDrift, holdout }, off);
    expect(result.decision).toBe('promote');
    expect(result.checks.filter((c) => c.status !== 'pass').map((c) => [c.code, c.status])).toEqual([
      ['flagged-fraction', 'overridden'],
      ['module-drift', 'overridden'],
      ['holdout', 'overridden'],
    ]);
    expect(result.reasons[0]).toBe(
      '4 of 10 updates flagged (40%, limit 34%): recorded only, the drift audit is off (audit.enforce false)',
    );
    expect(result.summary.flaggedCount).toBe(4);
    const nan = meanOf(updates).map((t) => Float32Array.from(t));
    nan[0]?.fill(Number.NaN);
    expect(auditRound({ updates, aggregate: nan }, off).decision).toBe('reject');
    const spent = auditRound(
      { updates, aggregate: meanOf(updates), privacy: { epsilon: 4, epsilonBudget: 3, delta: 1e-5 } },
      off,
    );
    expect([spent.decision, spent.terminal]).toEqual(['reject', true]);
  });

  it('rejects empty or non-finite input', () => {
    expect(auditRound({ updates: [], aggregate: [] }, policy).reasons).toEqual(['no updates to audit']);
    const updates = honestRound(3, 'nan');
    const aggregate = meanOf(updates).map((t) => Float32Array.from(t));
    aggregate[0]?.fill(Number.NaN);
    expect(auditRound({ updates, aggregate }, policy).decision).toBe('reject');
  });
});
