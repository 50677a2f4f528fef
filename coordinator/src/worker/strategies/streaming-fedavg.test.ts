import { FlotillaError } from '@flotilla/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { simdAvailable } from './simd-kernel.js';
import { StreamingFedAvg } from './streaming-fedavg.js';
import { seededRandom } from './test-random.js';
import { measureFedAvgThroughput } from './throughput.js';

describe('StreamingFedAvg', () => {
  it('has WebAssembly SIMD on the Node versions we support (>= 20.19)', () => {
    expect(simdAvailable()).toBe(true);
    expect(new StreamingFedAvg({ length: 3 }).usesSimd).toBe(true);
    expect(new StreamingFedAvg({ length: 3, kernel: 'scalar' }).usesSimd).toBe(false);
  });

  it('the SIMD kernel equals the TS loop to 1e-6 relative (lengths across chunk and lane tails)', () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fc.integer({ min: 0, max: 20_000 }),
        fc.integer({ min: 1, max: 6 }),
        (seed, length, count) => {
          const random = seededRandom(seed);
          const simd = new StreamingFedAvg({ length, kernel: 'simd' });
          const scalar = new StreamingFedAvg({ length, kernel: 'scalar' });
          for (let u = 0; u < count; u++) {
            const values = Float32Array.from({ length }, () => random() * 200 - 100);
            const weight = random() * 1000;
            simd.add(values, weight);
            scalar.add(values, weight);
          }
          if (!(scalar.totalWeight > 0)) return;
          const a = simd.result();
          const b = scalar.result();
          for (let i = 0; i < length; i++) {
            const e = b[i] ?? NaN;
            expect(Math.abs((a[i] ?? NaN) - e)).toBeLessThanOrEqual(1e-6 * Math.abs(e) + 1e-30);
          }
        },
      ),
      { numRuns: 15 },
    );
  });

  it('100 updates of 1M params stay within one f32 rounding of a float64 reference (< 1e-6 relative)', () => {
    const length = 1_000_000;
    const random = seededRandom(20260522);
    const reference = new Float64Array(length);
    const mean = new StreamingFedAvg({ length });
    const values = new Float32Array(length);
    let weightSum = 0;
    for (let u = 0; u < 100; u++) {
      for (let i = 0; i < length; i++) values[i] = random() * 2 - 1;
      const weight = 1 + Math.floor(random() * 1000);
      for (let i = 0; i < length; i++) reference[i] = (reference[i] ?? 0) + weight * (values[i] ?? 0);
      weightSum += weight;
      mean.add(values, weight);
    }
    const result = mean.result();
    let maxRelative = 0;
    for (let i = 0; i < length; i++) {
      const expected = (reference[i] ?? 0) / weightSum;
      if (expected !== 0)
        maxRelative = Math.max(maxRelative, Math.abs((result[i] ?? NaN) - expected) / Math.abs(expected));
    }
    // float64 accumulation leaves only the final rounding to f32: at most 2^-24 ≈ 6e-8 relative
    expect(maxRelative).toBeLessThan(1e-6);
    expect(maxRelative).toBeLessThanOrEqual(2 ** -24 * (1 + 1e-9));
  });

  it('folds many updates into one accumulator', () => {
    const mean = new StreamingFedAvg({ length: 4 });
    for (let u = 0; u < 1000; u++) mean.add(Float32Array.of(u, -u, 1, 0), 1);
    expect(mean.count).toBe(1000);
    expect(mean.totalWeight).toBe(1000);
    expect(Array.from(mean.result())).toEqual([499.5, -499.5, 1, 0]);
  });

  it('scale multiplies the values but not the weight (clip factors, zeroing)', () => {
    const mean = new StreamingFedAvg({ length: 1 });
    mean.add(Float32Array.of(4), 1, { scale: 0.5 });
    mean.add(Float32Array.of(100), 3, { scale: 0 });
    expect(Array.from(mean.result())).toEqual([0.5]);
  });

  it('refuses bad input with a FlotillaError code', () => {
    const mean = new StreamingFedAvg({ length: 2 });
    const code = (run: () => unknown): string | undefined => {
      try {
        run();
      } catch (error) {
        return FlotillaError.is(error) ? error.code : 'not a FlotillaError';
      }
      return undefined;
    };
    expect(code(() => mean.result())).toBe('BAD_REQUEST');
    expect(code(() => mean.add(new Float32Array(3), 1))).toBe('SHAPE_MISMATCH');
    expect(code(() => mean.add(new Float32Array(2), -1))).toBe('BAD_REQUEST');
    expect(code(() => mean.add(new Float32Array(2), Number.NaN))).toBe('BAD_REQUEST');
    mean.add(Float32Array.of(1, Number.POSITIVE_INFINITY), 1);
    expect(code(() => mean.result())).toBe('NON_FINITE');
    expect(code(() => new StreamingFedAvg({ length: -1 }))).toBe('BAD_REQUEST');
  });

  it('measureFedAvgThroughput reports positive rates for ours and for a plain copy', () => {
    const report = measureFedAvgThroughput({ length: 4096, updates: 2, repeats: 1 });
    expect(report.fedAvgGBps).toBeGreaterThan(0);
    expect(report.scalarGBps).toBeGreaterThan(0);
    expect(report.copyGBps).toBeGreaterThan(0);
    expect(report.usesSimd).toBe(true);
  });
});
