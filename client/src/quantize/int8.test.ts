import { decodeSafetensors } from '@flotilla/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRng } from '../model/seeded-rng.js';
import { dequantizeDelta, globalNorm, quantizeDelta } from './int8.js';
import { decodeQuantizedDelta, encodeQuantizedDelta } from './wire.js';

const f32 = fc.float({ min: -1000, max: 1000, noNaN: true, noDefaultInfinity: true });

describe('int8 quantization', () => {
  it('never lets the dequantized global norm exceed the clip bound (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(f32, { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 4 }),
        fc.double({ min: 1e-3, max: 1e3, noNaN: true }),
        fc.nat(),
        (arrays, clipNorm, seed) => {
          const tensors = new Map(
            arrays.map((a, i) => [`t${i}`, { shape: [a.length], values: Float32Array.from(a) }]),
          );
          const { delta, norm } = quantizeDelta({ tensors, clipNorm, rng: createRng(seed) });
          const decoded = decodeQuantizedDelta(encodeQuantizedDelta(delta)).tensors;
          const wireNorm = globalNorm([...decoded.values()].map((t) => t.values));
          expect(norm).toBeLessThanOrEqual(clipNorm);
          expect(wireNorm).toBeLessThanOrEqual(clipNorm);
          for (const t of delta.values()) for (const q of t.q) expect(Math.abs(q)).toBeLessThanOrEqual(127);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rounds stochastically without bias: the mean over many draws approaches the value', () => {
    // max|v| = 1.27 makes scale 0.01, so 0.123 sits at 12.3 steps: q is 12 or 13, E[q·s] = 0.123.
    const values = Float32Array.from([1.27, 0.123, -0.0456, 0.5]);
    const tensors = new Map([['w', { shape: [4], values }]]);
    const rng = createRng(42);
    const draws = 4000;
    const sums = new Float64Array(4);
    for (let i = 0; i < draws; i++) {
      const { delta } = quantizeDelta({ tensors, clipNorm: 100, rng });
      const deq = dequantizeDelta(delta).get('w')?.values ?? new Float32Array(4);
      deq.forEach((v, j) => (sums[j] = (sums[j] ?? 0) + v));
    }
    // Per-draw sd ≤ scale/2 = 0.005, so the sd of the mean is ≤ 0.005/√4000 ≈ 8e-5; allow 5e-4.
    values.forEach((v, j) => expect(Math.abs((sums[j] ?? 0) / draws - v)).toBeLessThan(5e-4));
  });

  it('clips before quantizing and writes I8 tensors with per-tensor scales in the metadata', () => {
    const tensors = new Map([
      ['a', { shape: [2, 2], values: Float32Array.from([3, 0, 0, 0]) }],
      ['b', { shape: [1], values: Float32Array.from([4]) }],
    ]);
    const { delta, clipped } = quantizeDelta({ tensors, clipNorm: 1, rng: createRng(1) });
    expect(clipped).toBe(true);
    // Clipped to norm 1: a = [0.6, 0, 0, 0], b = [0.8]; each max hits q = 127 exactly.
    expect(Array.from(delta.get('a')?.q ?? [])).toEqual([127, 0, 0, 0]);
    expect(Array.from(delta.get('b')?.q ?? [])).toEqual([127]);
    const bytes = encodeQuantizedDelta(delta);
    const file = decodeSafetensors(bytes);
    expect(file.tensors.get('a')?.dtype).toBe('I8');
    expect(file.tensors.get('a')?.shape).toEqual([2, 2]);
    expect(Number(file.metadata['scale:a'])).toBeCloseTo(0.6 / 127, 6);
    expect(Number(file.metadata['scale:b'])).toBeCloseTo(0.8 / 127, 6);
    const decoded = decodeQuantizedDelta(bytes).tensors;
    expect(decoded.get('a')?.values[0]).toBeCloseTo(0.6, 5);
    expect(decoded.get('b')?.values[0]).toBeCloseTo(0.8, 5);
  });
});
