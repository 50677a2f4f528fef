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

  it('keeps a drop equal to the allowed one within it, float error aside', () => {
    // 775 and 755 right of 1,000: 0.775 − 0.755 is 0.020000000000000018 in floating point.
    const equal = compareOnHoldout({
      candidate: { accuracy: 0.755 },
      current: { accuracy: 0.775 },
      maxAccuracyDrop: 0.02,
    });
    expect(equal.pass).toBe(true);
    expect(equal.reason).toBe('holdout accuracy 77.50% -> 75.50% (drop 2.00% within the allowed 2.00%)');
    expect(
      compareOnHoldout({
        candidate: { accuracy: 0.754 },
        current: { accuracy: 0.775 },
        maxAccuracyDrop: 0.02,
      }).pass,
    ).toBe(false);
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
