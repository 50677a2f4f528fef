import { describe, expect, it } from 'vitest';
import { createRng } from '../rng/random.js';
import {
  applyDeltaAttack,
  chooseByzantineDevices,
  gaussianAttack,
  labelFlipAttack,
  scalingAttack,
  signFlipAttack,
  type NamedTensors,
} from './attacks.js';

const delta = (): NamedTensors =>
  new Map([
    ['a', Float32Array.of(1, -2, 0.5)],
    ['b', Float32Array.of(4)],
  ]);

describe('delta attacks', () => {
  it('sign flip sends −s·Δ without mutating the input', () => {
    const honest = delta();
    const attacked = signFlipAttack(honest, { scale: 2 });
    expect(Array.from(attacked.get('a') ?? [])).toEqual([-2, 4, -1]);
    expect(Array.from(attacked.get('b') ?? [])).toEqual([-8]);
    expect(Array.from(honest.get('a') ?? [])).toEqual([1, -2, 0.5]);
    expect(Array.from(signFlipAttack(honest).get('b') ?? [])).toEqual([-4]);
  });

  it('scaling multiplies by λ', () => {
    expect(Array.from(scalingAttack(delta(), { factor: 10 }).get('a') ?? [])).toEqual([10, -20, 5]);
  });

  it('gaussian replace is pure N(0, σ²) noise; add keeps the delta as the mean', () => {
    const big: NamedTensors = new Map([['w', new Float32Array(20_000).fill(3)]]);
    const replaced = gaussianAttack(big, { std: 2, rng: createRng(1) }).get('w') ?? new Float32Array();
    const added =
      gaussianAttack(big, { std: 2, rng: createRng(1), mode: 'add' }).get('w') ?? new Float32Array();
    const mean = (xs: Float32Array) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = (xs: Float32Array) => {
      const m = mean(xs);
      return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
    };
    expect(Math.abs(mean(replaced))).toBeLessThan(0.05);
    expect(sd(replaced)).toBeCloseTo(2, 1);
    expect(mean(added)).toBeCloseTo(3, 1);
    // Same stream: added = 3 + the replaced noise.
    expect(added[17]).toBeCloseTo((replaced[17] ?? 0) + 3, 5);
  });

  it('applyDeltaAttack dispatches with documented defaults', () => {
    expect(applyDeltaAttack(delta(), { attack: 'none' }).get('b')?.[0]).toBe(4);
    expect(applyDeltaAttack(delta(), { attack: 'label-flip' }).get('b')?.[0]).toBe(4);
    expect(applyDeltaAttack(delta(), { attack: 'sign-flip' }).get('b')?.[0]).toBe(-4);
    expect(applyDeltaAttack(delta(), { attack: 'scaling' }).get('b')?.[0]).toBe(40);
    expect(() => applyDeltaAttack(delta(), { attack: 'gaussian' })).toThrow(/rng/);
  });
});

describe('label flip', () => {
  it('maps y to 9 − y by default and applies a given permutation', () => {
    const ys = Int32Array.of(0, 1, 2, 9, 5);
    expect(Array.from(labelFlipAttack(ys, { numClasses: 10 }))).toEqual([9, 8, 7, 0, 4]);
    expect(
      Array.from(labelFlipAttack(Int32Array.of(0, 1, 2), { numClasses: 3, permutation: [1, 2, 0] })),
    ).toEqual([1, 2, 0]);
    expect(() => labelFlipAttack(ys, { numClasses: 10, permutation: [0, 0, 1] })).toThrow(/permutation/);
    expect(() => labelFlipAttack(Int32Array.of(12), { numClasses: 10 })).toThrow(/outside/);
  });
});

describe('chooseByzantineDevices', () => {
  it('picks round(f·n) distinct devices deterministically', () => {
    const a = chooseByzantineDevices({ numDevices: 20, fraction: 0.2, rng: createRng(3) });
    expect(a).toHaveLength(4);
    expect(new Set(a).size).toBe(4);
    expect(chooseByzantineDevices({ numDevices: 20, fraction: 0.2, rng: createRng(3) })).toEqual(a);
    expect(chooseByzantineDevices({ numDevices: 20, fraction: 0, rng: createRng(3) })).toEqual([]);
  });
});
