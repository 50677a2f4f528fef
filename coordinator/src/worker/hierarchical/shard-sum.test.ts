import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { aggregateFedAvg } from '../strategies/fedavg.js';
import { flattenTensors } from '../strategies/flatten.js';
import { decomposes } from '../../shared/hierarchical-flow.js';
import {
  combineShardSums,
  decodeShardSum,
  encodeShardSum,
  sumIsFinite,
  sumShard,
  type WeightedDelta,
} from './shard-sum.js';
import { createSeededRng } from '../privacy/random.js';

function delta(a: number[], b: number[]): WeightedDelta['delta'] {
  return new Map([
    ['a', { shape: [2, 2], values: Float32Array.from(a) }],
    ['b', { shape: [3], values: Float32Array.from(b) }],
  ]);
}

describe('shard sums', () => {
  it('reproduces a hand-computed weighted mean across two shards', () => {
    // (1·x1 + 3·x2 + 4·x3) / 8 per coordinate, by hand:
    // a = [(1+15−8), (2+18+0), (3+21+0), (4+24+0)] / 8 = [1, 2.5, 3, 3.5];
    // b = [(0+3+0), (0+3+8), (0.5+1.5+8)] / 8 = [0.375, 1.375, 1.25].
    const x1 = { delta: delta([1, 2, 3, 4], [0, 0, 0.5]), weight: 1 };
    const x2 = { delta: delta([5, 6, 7, 8], [1, 1, 0.5]), weight: 3 };
    const x3 = { delta: delta([-2, 0, 0, 0], [0, 2, 2]), weight: 4 };
    const shards = [sumShard([x1, x2]), sumShard([x3])];
    const { mean, totalWeight, count } = combineShardSums(
      shards.map((s) => decodeShardSum(encodeShardSum(s))),
    );
    expect(totalWeight).toBe(8);
    expect(count).toBe(3);
    expect([...(mean.get('a')?.values ?? [])]).toEqual([1, 2.5, 3, 3.5]);
    expect([...(mean.get('b')?.values ?? [])]).toEqual([0.375, 1.375, 1.25]);
  });

  it('keeps float64 sums through the hi/lo f32 blob encoding', () => {
    const s = sumShard([{ delta: delta([1 / 3, 1e-9, 1e8 + 1, 0], [0, 0, 0]), weight: 1 }]);
    const back = decodeShardSum(encodeShardSum(s));
    const got = back.sums.get('a')?.values ?? new Float64Array();
    // f32(1/3) is what the delta holds; hi+lo restores it (and 1e8+1, which f32 alone cannot hold).
    expect(got[0]).toBe(Math.fround(1 / 3));
    expect(got[2]).toBe(Math.fround(1e8 + 1));
    expect(back.totalWeight).toBe(1);
  });

  it('equals single-stage FedAvg for any partition into shards (property)', () => {
    const update = fc.record({
      values: fc.array(fc.float({ min: -10, max: 10, noNaN: true, noDefaultInfinity: true }), {
        minLength: 7,
        maxLength: 7,
      }),
      weight: fc.integer({ min: 1, max: 1000 }),
    });
    fc.assert(
      fc.property(
        fc.array(update, { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 8 }),
        (ups, size) => {
          const deltas = ups.map((u) => ({
            delta: delta(u.values.slice(0, 4), u.values.slice(4)),
            weight: u.weight,
          }));
          const shards = [];
          for (let i = 0; i < deltas.length; i += size) shards.push(sumShard(deltas.slice(i, i + size)));
          const { mean } = combineShardSums(shards.map((s) => decodeShardSum(encodeShardSum(s))));
          const single = aggregateFedAvg(
            deltas.map((d) => ({ values: flattenTensors(d.delta).values, weight: d.weight })),
          );
          const hier = flattenTensors(mean).values;
          for (let i = 0; i < hier.length; i++)
            expect(Math.abs((hier[i] ?? 0) - (single.values[i] ?? 0))).toBeLessThanOrEqual(
              1e-6 * Math.max(1, Math.abs(single.values[i] ?? 0)),
            );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('leaves tensors known to be zero at +0 without adding them, as adding would', () => {
    const deltas = [
      { delta: delta([1.5, -2, 3, 4], [0, 0, 0]), weight: 3 },
      { delta: delta([0.25, 6, -7, 8], [0, 0, 0]), weight: 0.5 },
    ];
    const skipped = sumShard(deltas, { zeros: new Set(['b']) });
    expect(encodeShardSum(skipped)).toEqual(encodeShardSum(sumShard(deltas)));
    expect([...(skipped.sums.get('b')?.values ?? [])].map((v) => Object.is(v, 0))).toEqual([
      true,
      true,
      true,
    ]);
  });

  it('adds w·x in float64 update by update, bit for bit as a plain loop, weight 0 and tails included', () => {
    const rng = createSeededRng('shard-sum-bits');
    // Past one 32,768-value chunk of the fold, with a tail that is not a whole lane group.
    const length = 70_003;
    const weights = [3, 0, 1e6, 0.1, 7, 2.5, 1];
    const updates = weights.map((weight) => ({
      weight,
      delta: new Map([
        [
          'w',
          {
            shape: [length],
            values: Float32Array.from(
              { length },
              () => rng.normal() * 10 ** Math.floor(rng.uniform() * 11 - 8),
            ),
          },
        ],
      ]),
    }));
    const definition = new Float64Array(length);
    for (const { delta: d, weight } of updates) {
      const values = d.get('w')?.values ?? new Float32Array(length);
      for (let i = 0; i < length; i++) definition[i] = (definition[i] ?? 0) + weight * (values[i] ?? 0);
    }
    const sum = sumShard(updates);
    const got = sum.sums.get('w')?.values ?? new Float64Array(0);
    expect(Buffer.from(got.buffer).equals(Buffer.from(definition.buffer))).toBe(true);
    expect(sum.totalWeight).toBe(weights.reduce((a, b) => a + b, 0));
    expect(sumIsFinite(sum)).toBe(true);
  });

  it('shows NaN and ±Inf in any delta in the sum', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const poisoned = delta([1, 2, 3, 4], [0, bad, 0]);
      const sum = sumShard([
        { delta: delta([1, 2, 3, 4], [5, 6, 7]), weight: 2 },
        { delta: poisoned, weight: 1 },
      ]);
      expect(sumIsFinite(sum)).toBe(false);
    }
  });

  it('refuses deltas of different layouts', () => {
    const other = new Map([['a', { shape: [4], values: new Float32Array(4) }]]);
    expect(() =>
      sumShard([
        { delta: delta([0, 0, 0, 0], [0, 0, 0]), weight: 1 },
        { delta: other, weight: 1 },
      ]),
    ).toThrow(/tensors/);
  });

  it('says which strategies decompose into shard sums', () => {
    for (const name of ['fedavg', 'fedavgm', 'fedadam', 'fedyogi', 'fedadagrad'] as const)
      expect(decomposes({ name, loraRule: 'fedit' })).toBe(true);
    for (const name of ['median', 'trimmed-mean', 'krum', 'multi-krum', 'bulyan', 'norm-bounding'] as const)
      expect(decomposes({ name, loraRule: 'fedit' })).toBe(false);
    expect(decomposes({ name: 'fedavg', loraRule: 'product' })).toBe(false);
  });
});
