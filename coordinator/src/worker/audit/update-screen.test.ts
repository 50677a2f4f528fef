import { AuditPolicySchema } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import type { UpdateStats } from './reference.js';
import { isFlagged, screenUpdates } from './update-screen.js';

const policy = AuditPolicySchema.parse({});

describe('screenUpdates: the low-cosine rule at the clip bound', () => {
  it('flags an outlying cosine only when the update also opposes the median of the others', () => {
    // Ten clipped updates (norm 1). Cosines to the round's reference: eight near 0.5, two at 0.1.
    // Median 0.5; absolute deviations sorted 0, 0, 0, 0, .01, .01, .02, .02, .4, .4, so the MAD
    // is 0.01 and σ̂ = 1.4826 · 0.01 < the 0.05 floor: σ̂ = 0.05, and 0.1 scores (0.1 − 0.5) / 0.05
    // = −8, past −3.5 for both. Update 8 is against the others (cosine −0.2 to their median):
    // flagged. Update 9 is merely orthogonal to them (+0.05), as an honest device holding other
    // labels is: not flagged.
    const cosines = [0.5, 0.52, 0.48, 0.5, 0.51, 0.49, 0.5, 0.5, 0.1, 0.1];
    const others = [0.3, 0.32, 0.28, 0.3, 0.31, 0.29, 0.3, 0.3, -0.2, 0.05];
    const stats: UpdateStats[] = cosines.map((cosine, i) => ({
      norm: 1,
      cosine,
      othersCosine: others[i] ?? null,
      nearestDistance: 1,
    }));
    const findings = screenUpdates({ stats, referenceNorm: 0.5, dimension: 1000, policy });
    expect(findings[8]?.cosineZ).toBeCloseTo(-8, 12);
    expect(findings[9]?.cosineZ).toBeCloseTo(-8, 12);
    expect(findings.filter(isFlagged).map((f) => f.index)).toEqual([8]);
    expect(findings[8]?.lowCosine).toBe(true);
    expect(findings[8]?.othersCosine).toBe(-0.2);
    // A stricter floor (the policy's minCosine) lets the orthogonal one through too, a laxer one
    // neither.
    const strict = screenUpdates({
      stats,
      referenceNorm: 0.5,
      dimension: 1000,
      policy: { ...policy, minCosine: 0.1 },
    });
    expect(strict.filter(isFlagged).map((f) => f.index)).toEqual([8, 9]);
    const lax = screenUpdates({
      stats,
      referenceNorm: 0.5,
      dimension: 1000,
      policy: { ...policy, minCosine: -0.3 },
    });
    expect(lax.filter(isFlagged)).toEqual([]);
  });

  it('flags updates against the others and the last promoted step when they are half the round', () => {
    // Five updates at cosine +0.3 to the round's reference, five at −0.3: median 0, MAD 0.3,
    // σ̂ = 0.3 / 0.6745, every score ±0.6745: no outlier. All ten oppose the others' median (the half that
    // opposes the other half); only the five at −0.4 to the last promoted step oppose it too.
    const stats: UpdateStats[] = Array.from({ length: 10 }, (_, i) => ({
      norm: 1,
      cosine: i < 5 ? 0.3 : -0.3,
      othersCosine: -0.1,
      nearestDistance: 1,
    }));
    const stepCosines = stats.map((_, i) => (i < 5 ? 0.4 : -0.4));
    const findings = screenUpdates({ stats, referenceNorm: 0.5, dimension: 1000, policy, stepCosines });
    expect(findings[9]?.cosineZ).toBeCloseTo(-0.6745, 12);
    expect(findings.filter(isFlagged).map((f) => f.index)).toEqual([5, 6, 7, 8, 9]);
    expect(findings[5]?.stepCosine).toBe(-0.4);
    // Without a last promoted step (the first round), nothing in such a round is flagged.
    expect(screenUpdates({ stats, referenceNorm: 0.5, dimension: 1000, policy }).filter(isFlagged)).toEqual(
      [],
    );
    // Against the step but not against the others (an honest device whose labels the last step
    // moved away from): not flagged.
    const honest = stats.map((x) => ({ ...x, othersCosine: 0.05 }));
    expect(
      screenUpdates({ stats: honest, referenceNorm: 0.5, dimension: 1000, policy, stepCosines }).filter(
        isFlagged,
      ),
    ).toEqual([]);
  });

  it('does not flag a low cosine that is within the round spread, however negative', () => {
    // Cosines spread evenly from −0.45 to +0.45: median 0, MAD 0.25, σ̂ 0.371; −0.45 scores −1.2.
    const stats: UpdateStats[] = Array.from({ length: 10 }, (_, i) => ({
      norm: 1,
      cosine: -0.45 + 0.1 * i,
      othersCosine: -0.45 + 0.1 * i,
      nearestDistance: 1,
    }));
    const findings = screenUpdates({ stats, referenceNorm: 0.5, dimension: 1000, policy });
    expect(findings[0]?.cosineZ).toBeCloseTo(-0.45 / (1.4826 * 0.25), 3);
    expect(findings.filter(isFlagged)).toEqual([]);
  });
});
