// One contract suite run against every strategy (DISCO-style): shape, finiteness, identical
// updates, permutation invariance and weight-scaling invariance.
import { StrategyConfigSchema, isServerOptimizer, type StrategyConfig } from '@flotilla/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { STRATEGY_REGISTRY, aggregate, type AggregationConfig, type WeightedUpdate } from './index.js';
import { randomPermutation, seededRandom } from './test-random.js';

function config(input: Partial<StrategyConfig> & { name: StrategyConfig['name'] }): StrategyConfig {
  return StrategyConfigSchema.parse(input);
}

interface ContractCase {
  label: string;
  config: AggregationConfig;
  /**
   * Fewest updates used. Krum-family strategies break score ties by index (Flower), so they are
   * order-invariant only for inputs in general position: with Krum's neighbour count
   * max(1, n - f - 2) = 1 the mutual nearest pair always ties, so n is kept >= f + 4 (and for
   * Bulyan, whose last Krum round sees 2f + 1 updates, f = 3).
   */
  minUpdates: number;
  /** What n identical copies of x (any weights) must aggregate to, from the strategy's definition. */
  identical: (x: number) => number;
  /** L2 norm of x, for the norm-bounding cases. */
  usesNorm?: boolean;
}

const eta = 0.5;
const b1 = 0.8;
const b2 = 0.95;
const tau = 0.05;
const serverParams = { serverLearningRate: eta, beta1: b1, beta2: b2, tau, serverMomentum: 0.7 };
const bound = 1.5;

const cases: ContractCase[] = [
  { label: 'fedavg', config: config({ name: 'fedavg' }), minUpdates: 1, identical: (x) => x },
  // first server step from fresh state (m₋₁ = 0, v₋₁ = τ², momentum₋₁ = 0), Δ = x
  {
    label: 'fedavgm',
    config: config({ name: 'fedavgm', ...serverParams }),
    minUpdates: 1,
    identical: (x) => eta * x,
  },
  {
    label: 'fedadam',
    config: config({ name: 'fedadam', ...serverParams }),
    minUpdates: 1,
    identical: (x) => (eta * (1 - b1) * x) / (Math.sqrt(b2 * tau * tau + (1 - b2) * x * x) + tau),
  },
  {
    label: 'fedyogi',
    config: config({ name: 'fedyogi', ...serverParams }),
    minUpdates: 1,
    identical: (x) =>
      (eta * (1 - b1) * x) / (Math.sqrt(tau * tau - (1 - b2) * x * x * Math.sign(tau * tau - x * x)) + tau),
  },
  {
    label: 'fedadagrad',
    config: config({ name: 'fedadagrad', ...serverParams }),
    minUpdates: 1,
    identical: (x) => (eta * (1 - b1) * x) / (Math.sqrt(tau * tau + x * x) + tau),
  },
  { label: 'median', config: config({ name: 'median' }), minUpdates: 1, identical: (x) => x },
  {
    label: 'trimmed-mean',
    config: config({ name: 'trimmed-mean', beta: 0.2 }),
    minUpdates: 1,
    identical: (x) => x,
  },
  { label: 'krum', config: config({ name: 'krum', byzantine: 1 }), minUpdates: 5, identical: (x) => x },
  {
    label: 'multi-krum',
    config: config({ name: 'multi-krum', byzantine: 1 }),
    minUpdates: 5,
    identical: (x) => x,
  },
  {
    label: 'multi-krum uniform',
    config: { ...config({ name: 'multi-krum', byzantine: 1, keep: 3 }), multiKrumWeighting: 'uniform' },
    minUpdates: 5,
    identical: (x) => x,
  },
  { label: 'bulyan', config: config({ name: 'bulyan', byzantine: 3 }), minUpdates: 15, identical: (x) => x },
  {
    label: 'norm-bounding clip',
    config: config({ name: 'norm-bounding', normBound: bound }),
    minUpdates: 1,
    identical: (x) => x,
    usesNorm: true,
  },
  {
    label: 'norm-bounding zero',
    config: { ...config({ name: 'norm-bounding', normBound: bound }), normBoundingMode: 'zero' },
    minUpdates: 1,
    identical: (x) => x,
    usesNorm: true,
  },
];

const scenario = (minUpdates: number) =>
  fc.record({
    seed: fc.integer(),
    n: fc.integer({ min: minUpdates, max: minUpdates + 6 }),
    length: fc.integer({ min: 1, max: 9 }),
  });

function randomUpdates(seed: number, n: number, length: number): WeightedUpdate[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => ({
    values: Float32Array.from({ length }, () => random() * 4 - 2),
    weight: 1 + Math.floor(random() * 100),
  }));
}

function expectAllClose(actual: Float32Array, expected: ArrayLike<number>, tolerance = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i] ?? NaN;
    expect(Math.abs((actual[i] ?? NaN) - e)).toBeLessThanOrEqual(tolerance * (1 + Math.abs(e)));
  }
}

describe.each(cases)('aggregation contract: $label', (c) => {
  it('returns one finite value per coordinate and valid selected indices', () => {
    fc.assert(
      fc.property(scenario(c.minUpdates), ({ seed, n, length }) => {
        const { result, state } = aggregate(c.config, randomUpdates(seed, n, length));
        expect(result.values.length).toBe(length);
        expect(result.values.every((v) => Number.isFinite(v))).toBe(true);
        expect(result.selected).toEqual([...new Set(result.selected)].sort((a, b) => a - b));
        expect(result.selected.every((i) => Number.isInteger(i) && i >= 0 && i < n)).toBe(true);
        expect(state !== undefined).toBe(isServerOptimizer(c.config.name));
      }),
      { numRuns: 40 },
    );
  });

  it('aggregates identical updates as its definition says', () => {
    fc.assert(
      fc.property(scenario(c.minUpdates), ({ seed, n, length }) => {
        const random = seededRandom(seed);
        const x = Float32Array.from({ length }, () => random() * 4 - 2);
        const updates = Array.from({ length: n }, () => ({
          values: x,
          weight: 1 + Math.floor(random() * 10),
        }));
        let expected = Array.from(x, c.identical);
        if (c.usesNorm) {
          const norm = Math.hypot(...x);
          const zeroMode = c.config.normBoundingMode === 'zero';
          if (norm > bound)
            expected = zeroMode ? expected.map(() => 0) : expected.map((v) => (v * bound) / norm);
        }
        expectAllClose(aggregate(c.config, updates).result.values, expected);
      }),
      { numRuns: 40 },
    );
  });

  it('is invariant to the order of the updates', () => {
    fc.assert(
      fc.property(scenario(c.minUpdates), fc.integer(), ({ seed, n, length }, permSeed) => {
        const updates = randomUpdates(seed, n, length);
        const perm = randomPermutation(n, seededRandom(permSeed));
        const permuted = perm.map((i) => updates[i] ?? { values: new Float32Array(length), weight: 1 });
        const original = aggregate(c.config, updates).result;
        const reordered = aggregate(c.config, permuted).result;
        expectAllClose(reordered.values, original.values);
        expect(reordered.selected.map((i) => perm[i]).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(
          original.selected,
        );
      }),
      { numRuns: 40 },
    );
  });

  it('is invariant to multiplying every weight by one constant', () => {
    fc.assert(
      fc.property(
        scenario(c.minUpdates),
        fc.double({ min: 1e-3, max: 1e3, noNaN: true }),
        ({ seed, n, length }, factor) => {
          const updates = randomUpdates(seed, n, length);
          const scaled = updates.map((u) => ({ values: u.values, weight: u.weight * factor }));
          expectAllClose(
            aggregate(c.config, scaled).result.values,
            aggregate(c.config, updates).result.values,
          );
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('aggregation contract coverage', () => {
  it('has a case for every strategy in the registry (docs/adding-a-strategy.md)', () => {
    expect(new Set(cases.map((c) => c.config.name))).toEqual(new Set(Object.keys(STRATEGY_REGISTRY)));
  });
});
