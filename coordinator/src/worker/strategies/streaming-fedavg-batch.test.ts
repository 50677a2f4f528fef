import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KernelArena } from './kernel-arena.js';
import { aggregateFedAvg } from './fedavg.js';
import { StreamingFedAvg, accumulatorFootprint, type BatchEntry } from './streaming-fedavg.js';
import { seededRandom } from './test-random.js';

/** Lengths around the 32,768-value chunk and the 8-lane tails. */
const lengthArb = fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 32_760, max: 32_800 }));

function entries(seed: number, length: number, count: number): BatchEntry[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => ({
    values: Float32Array.from({ length }, () => (random() - 0.5) * 10 ** (random() * 6 - 3)),
    weight: Math.floor(random() * 100),
    ...(random() < 0.2 ? { scale: random() < 0.5 ? 0 : random() } : {}),
  }));
}

describe('StreamingFedAvg.addAll', () => {
  it('gives bit for bit the sums of one add() per update, and of the TS loop', () => {
    fc.assert(
      fc.property(fc.integer(), lengthArb, fc.integer({ min: 1, max: 9 }), (seed, length, count) => {
        const batch = entries(seed, length, count);
        const one = new StreamingFedAvg({ length, kernel: 'simd' });
        for (const e of batch) one.add(e.values, e.weight, e.scale === undefined ? {} : { scale: e.scale });
        const all = new StreamingFedAvg({ length, kernel: 'simd' });
        all.addAll(batch);
        const scalar = new StreamingFedAvg({ length, kernel: 'scalar' });
        scalar.addAll(batch);
        expect(all.totalWeight).toBe(one.totalWeight);
        if (!(one.totalWeight > 0)) return;
        const expected = Array.from(scalar.result());
        expect(Array.from(all.result())).toEqual(expected);
        expect(Array.from(one.result())).toEqual(expected);
      }),
      { numRuns: 40 },
    );
  });

  it('reads updates that live in its arena in place, with the same result as heap copies', () => {
    const length = 70_001;
    const batch = entries(7, length, 6).map((e) => ({ values: e.values, weight: e.weight + 1 }));
    const arena = KernelArena.create(6 * KernelArena.footprint(length, 4) + accumulatorFootprint(length));
    if (arena === null) throw new Error('no WebAssembly SIMD');
    const resident = batch.map((e) => {
      const values = arena.float32(length);
      if (values === null) throw new Error('arena too small');
      values.set(e.values);
      return { ...e, values };
    });
    const inPlace = new StreamingFedAvg({ length, arena });
    inPlace.addAll(resident);
    expect(inPlace.inPlaceCount).toBe(6);
    const staged = new StreamingFedAvg({ length });
    staged.addAll(batch);
    expect(staged.inPlaceCount).toBe(0);
    expect(Array.from(inPlace.result())).toEqual(Array.from(staged.result()));
    inPlace.release();

    // aggregateFedAvg finds the arena from the updates and gives its accumulator back afterwards.
    const before = arena.available;
    const result = aggregateFedAvg(resident);
    expect(result.details).toMatchObject({ kernel: 'wasm-simd', readInPlace: 6 });
    expect(arena.available).toBe(before);
  });

  it('falls back to a private arena (staged reads) when the given arena is full', () => {
    const arena = KernelArena.create(65_536);
    if (arena === null) throw new Error('no WebAssembly SIMD');
    const values = arena.float32(1000);
    if (values === null) throw new Error('arena too small');
    values.fill(0.5);
    const mean = new StreamingFedAvg({ length: 1000, arena });
    mean.addAll([{ values, weight: 2 }]);
    expect(mean.inPlaceCount).toBe(0);
    expect(mean.result()[999]).toBe(0.5);
  });

  it('checks every entry before folding any, and refuses use after release', () => {
    const mean = new StreamingFedAvg({ length: 2 });
    expect(() =>
      mean.addAll([
        { values: Float32Array.of(1, 1), weight: 1 },
        { values: Float32Array.of(1), weight: 1 },
      ]),
    ).toThrow(/expected 2/);
    expect(mean.count).toBe(0);
    mean.addAll([{ values: Float32Array.of(3, 5), weight: 2 }]);
    expect(Array.from(mean.result())).toEqual([3, 5]);
    mean.release();
    expect(() => mean.result()).toThrow(/released/);
  });
});
