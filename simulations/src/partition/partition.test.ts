import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRng } from '../rng/random.js';
import { proportionalSizes, type Partition } from './partition.js';
import { capPartition, partitionExamples, type PartitionScheme } from './scheme.js';
import { labelCounts, summarizePartition } from './statistics.js';

// 10 balanced classes of 300 examples, interleaved.
const labels = Int32Array.from({ length: 3000 }, (_, i) => i % 10);

function expectDisjoint(partition: Partition, n: number): number {
  const seen = new Uint8Array(n);
  let assigned = 0;
  for (const device of partition) {
    for (const index of device) {
      if (!(index >= 0 && index < n) || seen[index] === 1)
        throw new Error(`index ${index} out of range or repeated`);
      seen[index] = 1;
      assigned += 1;
    }
  }
  return assigned;
}

const schemes: Array<{ scheme: PartitionScheme; alpha?: number; shardsPerDevice?: number }> = [
  { scheme: 'iid' },
  { scheme: 'dirichlet', alpha: 0.1 },
  { scheme: 'shards', shardsPerDevice: 2 },
  { scheme: 'quantity-skew' },
];

describe('partitions: coverage, disjointness, reproducibility', () => {
  for (const config of schemes) {
    it(`${config.scheme}: every example at most once, no empty device, same seed same result`, () => {
      fc.assert(
        fc.property(fc.nat({ max: 1000 }), fc.integer({ min: 2, max: 40 }), (seed, numDevices) => {
          const make = (s: number) => partitionExamples({ ...config, labels, numDevices, rng: createRng(s) });
          const partition = make(seed);
          expect(partition).toHaveLength(numDevices);
          const assigned = expectDisjoint(partition, labels.length);
          // Shards leave at most (shards per class − 1) examples per class unassigned, and with
          // fewer shards (numDevices·k) than classes, whole classes stay unused.
          if (config.scheme === 'shards') {
            expect(assigned).toBeGreaterThan(Math.min(numDevices * 2, 10) * 300 - 10 * numDevices);
          } else expect(assigned).toBe(labels.length);
          for (const device of partition) expect(device.length).toBeGreaterThan(0);
          expect(make(seed)).toEqual(partition);
        }),
        { numRuns: 15 },
      );
    });
  }
});

describe('label skew statistics', () => {
  it('IID devices see every label in about equal shares; sizes differ by at most one', () => {
    const partition = partitionExamples({ scheme: 'iid', labels, numDevices: 10, rng: createRng(1) });
    const summary = summarizePartition(partition, labels, 10);
    expect(summary.maxSize - summary.minSize).toBeLessThanOrEqual(1);
    expect(summary.meanDistinctLabels).toBe(10);
    // Each device holds 300 examples; a label's share has mean 0.1 and sd ≈ 0.017.
    expect(summary.meanTopLabelShare).toBeLessThan(0.2);
  });

  it('Dirichlet(0.1) concentrates labels far more than Dirichlet(100)', () => {
    const skewed = summarizePartition(
      partitionExamples({ scheme: 'dirichlet', alpha: 0.1, labels, numDevices: 10, rng: createRng(2) }),
      labels,
      10,
    );
    const flat = summarizePartition(
      partitionExamples({ scheme: 'dirichlet', alpha: 100, labels, numDevices: 10, rng: createRng(2) }),
      labels,
      10,
    );
    // With α = 0.1 a device's label mix is dominated by one or two labels (E[max share] well above 1/2
    // for 10 classes); with α = 100 it is close to uniform (top share near 0.1).
    expect(skewed.meanTopLabelShare).toBeGreaterThan(0.45);
    expect(flat.meanTopLabelShare).toBeLessThan(0.2);
    expect(skewed.meanDistinctLabels).toBeLessThan(flat.meanDistinctLabels);
  });

  it('shards give every device exactly k classes', () => {
    for (const k of [1, 2, 3]) {
      for (const numDevices of [5, 20, 33]) {
        const partition = partitionExamples({
          scheme: 'shards',
          shardsPerDevice: k,
          labels,
          numDevices,
          rng: createRng(k * 100 + numDevices),
        });
        for (const row of labelCounts(partition, labels, 10)) {
          expect(row.filter((count) => count > 0)).toHaveLength(k);
        }
      }
    }
    expect(() =>
      partitionExamples({ scheme: 'shards', shardsPerDevice: 11, labels, numDevices: 5, rng: createRng(1) }),
    ).toThrow(/shardsPerDevice/);
  });

  it('quantity skew varies sizes but keeps labels IID', () => {
    const partition = partitionExamples({
      scheme: 'quantity-skew',
      sigma: 1.5,
      labels,
      numDevices: 20,
      rng: createRng(4),
    });
    const summary = summarizePartition(partition, labels, 10);
    expect(summary.maxSize / summary.minSize).toBeGreaterThan(5);
    const big = partition.reduce((a, b) => (b.length > a.length ? b : a));
    const counts = labelCounts([big], labels, 10)[0] ?? [];
    expect(Math.max(...counts) / big.length).toBeLessThan(0.25);
  });

  it('names missing parameters and caps devices', () => {
    expect(() =>
      partitionExamples({ scheme: 'dirichlet', labels, numDevices: 3, rng: createRng(1) }),
    ).toThrow(/alpha/);
    expect(() =>
      partitionExamples({ scheme: 'iid', labels: [1, 2], numDevices: 3, rng: createRng(1) }),
    ).toThrow(/3 devices/);
    const capped = capPartition(
      partitionExamples({ scheme: 'iid', labels, numDevices: 3, rng: createRng(1) }),
      7,
    );
    expect(capped.map((d) => d.length)).toEqual([7, 7, 7]);
  });
});

describe('proportionalSizes', () => {
  it('sums to the total, respects the floor and rounds by largest remainder', () => {
    expect(proportionalSizes([1, 1, 1], 10)).toEqual([4, 3, 3]);
    // free = 10 − 2·2 = 6 split 4.5 : 1.5 → floors 4, 1; the spare unit goes to the tie at lower index.
    expect(proportionalSizes([3, 1], 10, 2)).toEqual([7, 3]);
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.01, max: 100, noNaN: true }), { minLength: 1, maxLength: 30 }),
        fc.nat(5000),
        (w, t) => {
          const sizes = proportionalSizes(w, t + w.length, 1);
          expect(sizes.reduce((a, b) => a + b, 0)).toBe(t + w.length);
          for (const s of sizes) expect(s).toBeGreaterThanOrEqual(1);
        },
      ),
    );
  });
});
