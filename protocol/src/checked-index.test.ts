import { describe, expect, it } from 'vitest';
import { at, f32At, f64At, i32At } from './checked-index.js';
import { FlotillaError } from './errors.js';

describe('checked element reads', () => {
  it('return the element inside the array', () => {
    expect(at([3, 4], 1)).toBe(4);
    expect(f32At(Float32Array.of(0.5, -2), 1)).toBe(-2);
    expect(f64At(Float64Array.of(0.1), 0)).toBe(0.1);
    expect(i32At(Int32Array.of(-7, 9), 0)).toBe(-7);
  });

  it('throw INTERNAL outside the array instead of reading a zero', () => {
    const reads = [
      () => at([3, 4], 2),
      () => f32At(new Float32Array(2), -1),
      () => f64At(new Float64Array(3), 3),
      () => i32At(new Int32Array(0), 0),
      () => f32At(new Float32Array(4), 1.5),
    ];
    for (const read of reads) {
      expect(read).toThrow(FlotillaError);
      try {
        read();
      } catch (error) {
        expect(FlotillaError.is(error, 'INTERNAL')).toBe(true);
      }
    }
    expect(() => at([1], 5)).toThrow('index 5 is outside an array of 1');
  });
});
