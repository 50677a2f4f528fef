import { AuditPolicySchema } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { RdpAccountant } from '../privacy/accountant.js';
import { auditRound } from './audit-round.js';
import { cosineSimilarity, l2Norm, leaveOneOutCosine } from './cosine.js';
import { honestRound, meanOf, scaled } from './audit-fixtures.fixture.js';

const policy = AuditPolicySchema.parse({});

describe('auditRound', () => {
  it('honest-only rounds produce no flags and are promoted', () => {
    for (const seed of ['a', 'b', 'c', 'd', 'e']) {
      const updates = honestRound(10, seed);
      const result = auditRound({ updates, aggregate: meanOf(updates) }, policy);
      expect(
        result.findings.filter((f) => f.normOutlier || f.lowCosine),
        seed,
      ).toEqual([]);
      expect(result.decision).toBe('promote');
      expect(result.summary.flaggedCount).toBe(0);
    }
  });

  it('flags an update scaled by 100 among 9 honest ones as a norm outlier, with a reason', () => {
    const updates = honestRound(10, 'scaled');
    updates[3] = scaled(updates[3] ?? [], 100);
    const result = auditRound(
      { updates, aggregate: meanOf(updates), labels: updates.map((_, i) => `device-${i}`) },
      policy,
    );
    const outliers = result.findings.filter((f) => f.normOutlier).map((f) => f.index);
    expect(outliers).toEqual([3]);
    expect(result.findings[3]?.modifiedZ).toBeGreaterThan(policy.madThreshold);
    expect(result.reasons.some((r) => r.startsWith('device-3: norm') && r.includes('MAD outlier'))).toBe(
      true,
    );
    // 1 of 10 flagged is below maxFlaggedFraction (0.34): the flag is reported, the decision is not forced.
    expect(result.summary.flaggedFraction).toBeCloseTo(0.1, 12);
  });

  it('flags a sign-flipped update by cosine, with a reason', () => {
    const updates = honestRound(10, 'flip');
    updates[7] = scaled(updates[7] ?? [], -1);
    const result = auditRound({ updates, aggregate: meanOf(updates) }, policy);
    const low = result.findings.filter((f) => f.lowCosine).map((f) => f.index);
    expect(low).toEqual([7]);
    expect(result.findings[7]?.leaveOneOutCosine).toBeLessThan(-0.5);
    expect(result.findings[7]?.normOutlier).toBe(false);
    expect(
      result.reasons.some((r) => r.startsWith('update #7: points away from the mean of the other updates')),
    ).toBe(true);
  });

  it('rejects when too many updates are flagged', () => {
    // 4 of 10 sign-flipped: each flipped one disagrees with the mean of the others (6 honest − 3 flipped).
    const updates = honestRound(10, 'many');
    for (const i of [0, 1, 2, 3]) updates[i] = scaled(updates[i] ?? [], -1);
    const result = auditRound({ updates, aggregate: meanOf(updates) }, policy);
    expect(result.findings.filter((f) => f.lowCosine).map((f) => f.index)).toEqual([0, 1, 2, 3]);
    expect(result.decision).toBe('reject');
    expect(result.reasons[0]).toBe('4 of 10 updates flagged (40%, limit 34%)');
  });

  it('rejects with a reason when the privacy budget would be exhausted', () => {
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
    expect(result.reasons[0]).toMatch(
      /^privacy budget exhausted: epsilon 3\.74\d* at delta 0\.001 would exceed the budget 3\.5$/,
    );
  });

  it('rejects on module drift and on the holdout, and explains each', () => {
    const updates = honestRound(5, 'drift');
    const result = auditRound(
      {
        updates,
        aggregate: meanOf(updates),
        moduleDrift: [
          { module: 'dense_1', kind: 'lora', deltaNorm: 3, baseNorm: 2, drift: 1.5 },
          { module: 'dense_2', kind: 'bias', deltaNorm: 0.1, baseNorm: 1, drift: 0.1 },
        ],
        holdout: { candidate: { accuracy: 0.8 }, current: { accuracy: 0.9 } },
      },
      policy,
    );
    expect(result.decision).toBe('reject');
    expect(result.reasons).toContain('module dense_1 (lora) drifted 1.5 from the base, above the limit 1');
    expect(result.reasons.some((r) => r.includes('holdout accuracy 90.00% -> 80.00%'))).toBe(true);
    expect(result.summary.maxModuleDrift?.module).toBe('dense_1');
  });

  it('gives the same findings from precomputed similarities as from the updates', () => {
    const updates = honestRound(12, 'precomputed');
    updates[2] = scaled(updates[2] ?? [], -1);
    updates[9] = scaled(updates[9] ?? [], 100);
    const weights = updates.map((_, i) => 1 + (i % 4));
    const aggregate = meanOf(updates);
    const norms = updates.map((u) => l2Norm(u));
    const labels = updates.map((_, i) => `device-${i}`);
    const direct = auditRound({ updates, aggregate, norms, weights, labels }, policy);
    // The shard jobs' route: one Σ w·u (summed here by hand), then each update against it.
    const total = aggregate.map((t, k) => {
      const acc = new Float64Array(t.length);
      updates.forEach((u, i) => u[k]?.forEach((v, j) => (acc[j] = (acc[j] ?? 0) + (weights[i] ?? 0) * v)));
      return acc;
    });
    const similarities = updates.map((u, i) => ({
      cosine: cosineSimilarity(u, aggregate),
      leaveOneOutCosine: leaveOneOutCosine(u, total, weights[i] ?? 0),
    }));
    const viaScalars = auditRound({ similarities, aggregate, norms, labels }, policy);
    expect(viaScalars.reasons).toEqual(direct.reasons);
    expect(viaScalars.findings).toEqual(direct.findings);
    expect(direct.findings.filter((f) => f.lowCosine).map((f) => f.index)).toEqual([2]);
    expect(direct.findings.filter((f) => f.normOutlier).map((f) => f.index)).toEqual([9]);
    expect(() => auditRound({ updates, similarities, aggregate, norms }, policy)).toThrow(/not both/);
  });

  it('rejects empty or non-finite input', () => {
    expect(auditRound({ updates: [], aggregate: [] }, policy).reasons).toEqual(['no updates to audit']);
    const updates = honestRound(3, 'nan');
    const aggregate = meanOf(updates).map((t) => Float32Array.from(t));
    aggregate[0]?.fill(Number.NaN);
    expect(auditRound({ updates, aggregate }, policy).decision).toBe('reject');
  });
});
