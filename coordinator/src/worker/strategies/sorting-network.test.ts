import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { schedule } from './network-kernel.js';
import { oddEvenMergeSort, pruneNetwork } from './sorting-network.js';

function run(network: readonly (readonly [number, number])[], input: readonly number[]): number[] {
  const wires = [...input];
  for (const [i, j] of network) {
    const [a, b] = [wires[i] ?? NaN, wires[j] ?? NaN];
    if (a > b) [wires[i], wires[j]] = [b, a];
  }
  return wires;
}

describe('odd-even merge sort network', () => {
  it('sorts every 0-1 input for n ≤ 14 (so every input, by the 0-1 principle, Knuth 5.3.4)', () => {
    for (let n = 1; n <= 14; n++) {
      const network = oddEvenMergeSort(n);
      for (let bits = 0; bits < 2 ** n; bits++) {
        const input = Array.from({ length: n }, (_, k) => (bits >> k) & 1);
        const sorted = run(network, input);
        for (let k = 1; k < n; k++) expect(sorted[k - 1] ?? 2).toBeLessThanOrEqual(sorted[k] ?? -1);
      }
    }
  });

  it('has (t² − t + 4)·2^(t−2) − 1 comparators for n = 2^t (Knuth, TAOCP vol. 3, §5.3.4)', () => {
    for (let t = 1; t <= 10; t++) {
      expect(oddEvenMergeSort(2 ** t).length).toBe((t * t - t + 4) * 2 ** (t - 2) - 1);
    }
  });

  it('sorts random inputs of any size up to 300', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -50, max: 50 }), { minLength: 1, maxLength: 300 }), (input) => {
        expect(run(oddEvenMergeSort(input.length), input)).toEqual([...input].sort((a, b) => a - b));
      }),
      { numRuns: 200 },
    );
  });

  it('pruned to some outputs, leaves exactly those outputs of the whole network', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -20, max: 20 }), { minLength: 1, maxLength: 150 }),
        fc.nat(),
        fc.nat(),
        (input, a, b) => {
          const n = input.length;
          const [from, to] = [Math.min(a % n, b % n), Math.max(a % n, b % n) + 1];
          const network = oddEvenMergeSort(n);
          const pruned = pruneNetwork(
            network,
            Array.from({ length: to - from }, (_, k) => from + k),
          );
          expect(pruned.length).toBeLessThanOrEqual(network.length);
          expect(run(pruned, input).slice(from, to)).toEqual(run(network, input).slice(from, to));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('register schedule of a network', () => {
  it('gives the network result with a few slots, loading and storing the rest', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -20, max: 20 }), { minLength: 1, maxLength: 120 }),
        fc.integer({ min: 2, max: 12 }),
        (input, registers) => {
          const network = oddEvenMergeSort(input.length);
          const memory = [...input];
          const slots: number[] = Array<number>(registers).fill(NaN);
          for (const step of schedule(network, registers)) {
            if (step.kind === 'load') slots[step.slot] = memory[step.wire] ?? NaN;
            else if (step.kind === 'store') memory[step.wire] = slots[step.slot] ?? NaN;
            else {
              const [a, b] = [slots[step.low] ?? NaN, slots[step.high] ?? NaN];
              [slots[step.low], slots[step.high]] = [Math.min(a, b), Math.max(a, b)];
            }
          }
          expect(memory).toEqual(run(network, input));
        },
      ),
      { numRuns: 200 },
    );
  });
});
