import { describe, expect, it } from 'vitest';
import { madOutliers, median, modifiedZScores, summarizeNorms } from './norm-stats.js';

describe('modified z-score (Iglewicz & Hoaglin 1993)', () => {
  it('hand-checked example: [1, 2, 3, 4, 100]', () => {
    // median 3; |x - 3| = [2, 1, 0, 1, 97] -> MAD = 1; M = 0.6745 (x - 3) / 1
    const scores = modifiedZScores([1, 2, 3, 4, 100]);
    const expected = [-1.349, -0.6745, 0, 0.6745, 65.4265];
    scores.forEach((s, i) => expect(s).toBeCloseTo(expected[i] ?? Number.NaN, 10));
    expect(madOutliers([1, 2, 3, 4, 100]).outliers).toEqual([4]);
    expect(summarizeNorms([1, 2, 3, 4, 100])).toEqual({ count: 5, min: 1, median: 3, max: 100, mad: 1 });
  });

  it('median of an even count averages the middle pair', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('MAD = 0 with a non-zero median: the relative floor (0.1% of the median) applies', () => {
    // Most updates clipped to exactly C = 1; one at 2. sigma = 1e-3 -> M = (2 - 1) / 1e-3.
    const scores = modifiedZScores([1, 1, 1, 1, 2]);
    expect(scores[4]).toBeCloseTo(1000, 6);
    expect(scores.slice(0, 4)).toEqual([0, 0, 0, 0]);
    // float32 rounding of clipped norms is not an outlier
    expect(madOutliers([1, 1 + 1e-7, 1 - 1e-7, 1, 1]).outliers).toEqual([]);
  });

  it('MAD = 0 and median = 0: falls back to 1.253314 x mean absolute deviation', () => {
    // deviations [0, 0, 0, 0, 1] -> meanAD = 0.2 -> sigma = 0.2506628 -> M = 1 / sigma = 3.98942
    const scores = modifiedZScores([0, 0, 0, 0, 1]);
    expect(scores[4]).toBeCloseTo(1 / (1.253314 * 0.2), 6);
    expect(madOutliers([0, 0, 0, 0, 1]).outliers).toEqual([4]);
  });

  it('all equal values have score 0', () => {
    expect(modifiedZScores([0, 0, 0])).toEqual([0, 0, 0]);
    expect(modifiedZScores([5, 5, 5])).toEqual([0, 0, 0]);
  });

  it('is one-sided: small norms are not outliers', () => {
    expect(madOutliers([0.001, 10, 10.1, 9.9, 10.05]).outliers).toEqual([]);
  });
});
