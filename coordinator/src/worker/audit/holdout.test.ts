import { describe, expect, it } from 'vitest';
import { compareOnHoldout } from './holdout.js';

describe('compareOnHoldout', () => {
  it('passes within the allowed accuracy drop and fails beyond it', () => {
    expect(
      compareOnHoldout({ candidate: { accuracy: 0.9 }, current: { accuracy: 0.91 }, maxAccuracyDrop: 0.02 })
        .pass,
    ).toBe(true);
    const worse = compareOnHoldout({
      candidate: { accuracy: 0.85 },
      current: { accuracy: 0.91 },
      maxAccuracyDrop: 0.02,
    });
    expect(worse.pass).toBe(false);
    expect(worse.accuracyDrop).toBeCloseTo(0.06, 12);
    expect(worse.reason).toMatch(/drop 6\.00% exceeds the allowed 2\.00%/);
  });

  it('falls back to loss, and fails without comparable metrics', () => {
    expect(
      compareOnHoldout({ candidate: { loss: 0.5 }, current: { loss: 0.49 }, maxAccuracyDrop: 0.02 }).pass,
    ).toBe(true);
    expect(
      compareOnHoldout({ candidate: { loss: 0.6 }, current: { loss: 0.5 }, maxAccuracyDrop: 0.02 }).pass,
    ).toBe(false);
    expect(
      compareOnHoldout({
        candidate: { accuracy: Number.NaN },
        current: { accuracy: 0.5 },
        maxAccuracyDrop: 0.02,
      }).pass,
    ).toBe(false);
  });
});
