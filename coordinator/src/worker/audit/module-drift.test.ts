import { FlotillaError } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { biasModuleDrift, fullModuleDrift, loraModuleDrift } from './module-drift.js';

describe('loraModuleDrift', () => {
  it('hand-computed 2x2 example', () => {
    // A = [[1, 1], [0, 1]] (r = 2, in = 2), B = [[1, 0], [1, 1]] (out = 2, r = 2), alpha = 2 -> scale 1
    // B·A = [[1, 1], [1, 2]], ‖B·A‖_F² = 1 + 1 + 1 + 4 = 7; W = [[2, 0], [0, 2]], ‖W‖_F² = 8
    const drift = loraModuleDrift({
      module: 'dense',
      a: Float32Array.from([1, 1, 0, 1]),
      aShape: [2, 2],
      b: Float32Array.from([1, 0, 1, 1]),
      bShape: [2, 2],
      alpha: 2,
      base: Float32Array.from([2, 0, 0, 2]),
    });
    expect(drift.deltaNorm).toBeCloseTo(Math.sqrt(7), 12);
    expect(drift.baseNorm).toBeCloseTo(Math.sqrt(8), 12);
    expect(drift.drift).toBeCloseTo(Math.sqrt(7 / 8), 12);
    expect(drift.kind).toBe('lora');
  });

  it('applies alpha / r and handles a non-square rank-1 update', () => {
    // r = 1: A = [[1, 0, 2]] (in = 3), B = [[1], [2]] (out = 2), alpha = 4 -> scale 4
    // B·A = [[1, 0, 2], [2, 0, 4]], ‖·‖_F = 5, times 4 = 20; W all ones (6 values), ‖W‖ = sqrt(6)
    const drift = loraModuleDrift({
      module: 'm',
      a: Float32Array.from([1, 0, 2]),
      aShape: [1, 3],
      b: Float32Array.from([1, 2]),
      bShape: [2, 1],
      alpha: 4,
      base: new Float32Array(6).fill(1),
    });
    expect(drift.deltaNorm).toBeCloseTo(20, 12);
    expect(drift.drift).toBeCloseTo(20 / Math.sqrt(6), 12);
  });

  it('is 0 for the usual LoRA init (B = 0) and rejects mismatched shapes', () => {
    const zero = loraModuleDrift({
      module: 'm',
      a: Float32Array.from([1, 2]),
      aShape: [1, 2],
      b: new Float32Array(2),
      bShape: [2, 1],
      alpha: 8,
      base: new Float32Array(4).fill(1),
    });
    expect(zero.drift).toBe(0);
    expect(() =>
      loraModuleDrift({
        module: 'm',
        a: new Float32Array(2),
        aShape: [1, 2],
        b: new Float32Array(4),
        bShape: [2, 2],
        alpha: 1,
        base: new Float32Array(4),
      }),
    ).toThrow(FlotillaError);
  });
});

describe('biasModuleDrift', () => {
  it('is ‖Δb‖ / ‖b‖', () => {
    const drift = biasModuleDrift({
      module: 'dense',
      delta: Float32Array.from([0.375, 0.5]),
      base: Float32Array.from([3, 4]),
    });
    // ‖(0.375, 0.5)‖ = 0.625 (exact in float32), ‖(3, 4)‖ = 5
    expect(drift.drift).toBeCloseTo(0.125, 14);
    expect(
      biasModuleDrift({ module: 'z', delta: Float32Array.from([1]), base: Float32Array.from([0]) }).drift,
    ).toBe(Infinity);
    expect(
      biasModuleDrift({ module: 'z', delta: Float32Array.from([0]), base: Float32Array.from([0]) }).drift,
    ).toBe(0);
  });
});

describe('fullModuleDrift', () => {
  it('is ‖ΔW‖_F / ‖W‖_F: ΔW = [[0, 3, 0], [4, 0, 0]] (5) against W all twos (√24)', () => {
    const drift = fullModuleDrift({
      module: 'hidden',
      delta: Float32Array.from([0, 3, 0, 4, 0, 0]),
      base: new Float32Array(6).fill(2),
    });
    expect(drift).toMatchObject({ module: 'hidden', kind: 'full' });
    expect(drift.deltaNorm).toBeCloseTo(5, 12);
    expect(drift.baseNorm).toBeCloseTo(Math.sqrt(24), 12);
    expect(drift.drift).toBeCloseTo(5 / Math.sqrt(24), 12);
  });

  it('is 0 for the zero offset of version 0 and refuses a size mismatch', () => {
    expect(
      fullModuleDrift({ module: 'm', delta: new Float32Array(4), base: new Float32Array(4).fill(1) }).drift,
    ).toBe(0);
    expect(() =>
      fullModuleDrift({ module: 'm', delta: new Float32Array(3), base: new Float32Array(4) }),
    ).toThrow(FlotillaError);
  });
});
