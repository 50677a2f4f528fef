import { describe, expect, it } from 'vitest';
import { cosineSimilarity, l2Norm, nearestDistances } from './cosine.js';

const t = (...values: number[]): Float32Array => Float32Array.from(values);

describe('cosine', () => {
  it('spans tensors', () => {
    expect(l2Norm([t(3), t(4)])).toBe(5);
    expect(cosineSimilarity([t(1, 0), t(0)], [t(1, 0), t(0)])).toBeCloseTo(1, 15);
    expect(cosineSimilarity([t(1, 0), t(0)], [t(0, 1), t(0)])).toBe(0);
    expect(cosineSimilarity([t(1, 1)], [t(-1, -1)])).toBeCloseTo(-1, 15);
    expect(cosineSimilarity([t(0, 0)], [t(1, 1)])).toBe(0);
    expect(() => cosineSimilarity([t(1, 0)], [t(1)])).toThrow(/same tensors/);
  });

  it('gives each update its relative distance to the closest other one', () => {
    const a = [t(3, 0)];
    const b = [t(0, 4)];
    const c = [t(3, 0.3)]; // ‖a − c‖ = 0.3, max norm √9.09
    const copy = [t(0, 4)];
    const nearest = nearestDistances([a, b, c, copy]);
    expect(nearest[0]).toBeCloseTo(0.3 / Math.sqrt(9.09), 6);
    expect(nearest[1]).toBe(0);
    expect(nearest[2]).toBeCloseTo(0.3 / Math.sqrt(9.09), 6);
    expect(nearest[3]).toBe(0);
    // A copy scaled by 1.05 is not a duplicate: distance 0.05·‖u‖ / (1.05·‖u‖).
    expect(nearestDistances([a, [t(3.15, 0)]])[0]).toBeCloseTo(0.05 / 1.05, 6);
    expect(nearestDistances([a])).toEqual([null]);
    expect(nearestDistances([])).toEqual([]);
  });
});
