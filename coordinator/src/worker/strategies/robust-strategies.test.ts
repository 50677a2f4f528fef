import { describe, expect, it } from 'vitest';
import { aggregateBulyan } from './bulyan.js';
import { meanClosestToMedian } from './coordinate-wise.js';
import { aggregateKrum } from './krum.js';
import { aggregateMedian } from './median.js';
import { aggregateNormBounded } from './norm-bounding.js';
import { aggregateTrimmedMean } from './trimmed-mean.js';
import type { WeightedUpdate } from './types.js';
import { codeOf } from './test-error-code.js';

const scalars = (values: number[], weights?: number[]): WeightedUpdate[] =>
  values.map((v, i) => ({ values: Float32Array.of(v), weight: weights?.[i] ?? 1 }));

describe('Krum and Multi-Krum', () => {
  it('breaks score ties towards the first index (Flower)', () => {
    const { values, selected } = aggregateKrum(scalars([3, 1]), { byzantine: 0, keep: 1 });
    expect(selected).toEqual([0]);
    expect(Array.from(values)).toEqual([3]);
  });

  it('scores are sums of squared distances to the n - f - 2 nearest others (Blanchard et al.)', () => {
    // n = 5, f = 1: 2 neighbours. Points 0, 1, 2, 3, 10:
    // 0: 1 + 4 = 5; 1: 1 + 1 = 2; 2: 1 + 1 = 2; 3: 1 + 4 = 5; 10: 49 + 64 = 113
    const { details, selected, values } = aggregateKrum(scalars([0, 1, 2, 3, 10]), { byzantine: 1, keep: 1 });
    expect(details.scores).toEqual([5, 2, 2, 5, 113]);
    expect(selected).toEqual([1]);
    expect(Array.from(values)).toEqual([1]);
  });

  it('Multi-Krum keeps n - f by default and averages weighted by n, or uniformly', () => {
    const updates = scalars([0, 1, 2, 3, 10], [1, 1, 1, 5, 1]);
    const weighted = aggregateKrum(updates, { byzantine: 1 });
    expect(weighted.selected).toEqual([0, 1, 2, 3]);
    expect(weighted.values[0]).toBeCloseTo((0 + 1 + 2 + 15) / 8, 6);
    const uniform = aggregateKrum(updates, { byzantine: 1, weighting: 'uniform' });
    expect(uniform.values[0]).toBeCloseTo(1.5, 6);
  });

  it('excludes an attacker far from the honest cluster', () => {
    const honest = [0.9, 1.0, 1.1, 1.05, 0.95, 1.02];
    const { selected } = aggregateKrum(scalars([...honest, 1000]), { byzantine: 1, keep: 5 });
    expect(selected).not.toContain(6);
  });
});

describe('Bulyan', () => {
  it('needs n >= 4f + 3', () => {
    expect(codeOf(() => aggregateBulyan(scalars([1, 2, 3, 4, 5, 6]), { byzantine: 1 }))).toBe('BAD_REQUEST');
  });

  it('selects θ = n - 2f by repeated Krum and averages the β = θ - 2f values closest to the median', () => {
    // n = 7, f = 1: θ = 5, β = 3. The outlier 100 and then the farthest of the rest are dropped.
    // Remaining after Krum rounds: {1, 2, 3, 4, 5}; median 3; the 3 closest are 2, 3, 4 -> 3.
    const { values, selected, details } = aggregateBulyan(scalars([1, 2, 3, 4, 5, 9, 100]), { byzantine: 1 });
    expect(details.theta).toBe(5);
    expect(details.beta).toBe(3);
    expect(selected).toEqual([0, 1, 2, 3, 4]);
    expect(values[0]).toBeCloseTo(3, 6);
  });

  it('takes the values nearest the median, the lower one on equal distance', () => {
    expect(meanClosestToMedian(Float64Array.of(0, 4, 5, 6, 50), 3)).toBe(5);
    // median 5 (mean of 4 and 6); both are 1 away: the window grows to [4, 6] then to 3 (lower)
    expect(meanClosestToMedian(Float64Array.of(3, 4, 6, 7), 3)).toBeCloseTo(13 / 3, 12);
  });
});

describe('median and trimmed mean', () => {
  it('median of an even count is the mean of the two middle values (numpy)', () => {
    expect(Array.from(aggregateMedian(scalars([4, 1, 3, 100], [9, 9, 9, 9])).values)).toEqual([3.5]);
  });

  it('trimmed mean cuts floor(beta * n) per end and refuses a beta that leaves nothing', () => {
    // beta 0.2 with n = 4 cuts floor(0.8) = 0: plain mean
    expect(aggregateTrimmedMean(scalars([0, 1, 2, 101]), { beta: 0.2 }).values[0]).toBeCloseTo(26, 6);
    expect(aggregateTrimmedMean(scalars([0, 1, 2, 101, 3]), { beta: 0.2 }).values[0]).toBeCloseTo(2, 6);
    expect(codeOf(() => aggregateTrimmedMean(scalars([1, 2]), { beta: 0.5 }))).toBe('BAD_REQUEST');
  });
});

describe('norm bounding', () => {
  it('zeroing can renormalise over the surviving updates instead (zeroedStayInDenominator: false)', () => {
    // TFF vector "zeroing_weighted_mean": [1], [2], [5] with n = 1, 2, 2 and norm 2 -> 5/3 when the
    // zeroed client's weight leaves the denominator (it is 1.0 with TFF semantics).
    const updates = scalars([1, 2, 5], [1, 2, 2]);
    const result = aggregateNormBounded(updates, {
      normBound: 2,
      mode: 'zero',
      zeroedStayInDenominator: false,
    });
    expect(result.values[0]).toBeCloseTo(5 / 3, 6);
    expect(result.selected).toEqual([0, 1]);
    expect(result.details.zeroed).toEqual([2]);
  });

  it('all updates zeroed outside the denominator gives a zero step, not a division by zero', () => {
    const result = aggregateNormBounded(scalars([5, -7]), {
      normBound: 1,
      mode: 'zero',
      zeroedStayInDenominator: false,
    });
    expect(Array.from(result.values)).toEqual([0]);
    expect(result.selected).toEqual([]);
  });

  it('clips by the global L2 norm of the whole update', () => {
    // [3, 4] has norm 5: clipped to bound 1 it is [0.6, 0.8]
    const result = aggregateNormBounded([{ values: Float32Array.of(3, 4), weight: 2 }], { normBound: 1 });
    expect(result.values[0]).toBeCloseTo(0.6, 6);
    expect(result.values[1]).toBeCloseTo(0.8, 6);
    expect(result.details.clippedCount).toBe(1);
  });
});

describe('input checks', () => {
  it('refuses no updates, mixed lengths and bad weights', () => {
    expect(codeOf(() => aggregateMedian([]))).toBe('BAD_REQUEST');
    expect(
      codeOf(() => aggregateMedian([...scalars([1]), { values: Float32Array.of(1, 2), weight: 1 }])),
    ).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => aggregateKrum(scalars([1, 2], [1, -1]), { byzantine: 0 }))).toBe('BAD_REQUEST');
    expect(codeOf(() => aggregateMedian(scalars([1, Number.NaN, Number.NaN])))).toBe('NON_FINITE');
  });
});
