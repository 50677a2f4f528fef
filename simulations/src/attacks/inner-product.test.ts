import { describe, expect, it } from 'vitest';
import { applyDeltaAttack } from './attacks.js';
import { craftColludingUpdate, isColludingAttack } from './colluding.js';
import { alieZMax } from './little-is-enough.js';
import { DEFAULT_IPM_EPSILON, innerProductManipulation } from './inner-product.js';

const honest = [
  new Map([
    ['a', Float32Array.of(1, -2)],
    ['b', Float32Array.of(4)],
  ]),
  new Map([
    ['a', Float32Array.of(3, 2)],
    ['b', Float32Array.of(0)],
  ]),
];

describe('inner-product manipulation (Xie et al. 2020)', () => {
  it('sends −ε times the honest mean', () => {
    // Mean a = (2, 0), b = 2.
    const crafted = innerProductManipulation({ honest, epsilon: 0.5 });
    expect([...(crafted.get('a') ?? [])]).toEqual([-1, -0]);
    expect([...(crafted.get('b') ?? [])]).toEqual([-1]);
    const small = innerProductManipulation({ honest });
    expect(DEFAULT_IPM_EPSILON).toBe(0.1);
    expect(small.get('a')?.[0]).toBeCloseTo(-0.2, 7);
  });

  it('has a negative inner product with the honest mean, so FedAvg with f·ε > 1 − f moves backwards', () => {
    // FedAvg of (1 − f)·n honest updates with mean μ and f·n attackers: ((1 − f) − f·ε)·μ.
    const f = 0.3;
    const epsilon = 4;
    const crafted = innerProductManipulation({ honest, epsilon }).get('b')?.[0] ?? 0;
    const aggregate = (1 - f) * 2 + f * crafted;
    expect(aggregate).toBeCloseTo((1 - f - f * epsilon) * 2, 6);
    expect(aggregate * 2).toBeLessThan(0);
  });

  it('refuses ε <= 0, no updates, and mismatched shapes', () => {
    expect(() => innerProductManipulation({ honest, epsilon: 0 })).toThrow(/ε must be > 0/);
    expect(() => innerProductManipulation({ honest: [] })).toThrow(/no honest updates/);
    const ragged = [honest[0] ?? new Map(), new Map([['a', Float32Array.of(1)]])];
    expect(() => innerProductManipulation({ honest: ragged })).toThrow(/differ in tensor a/);
  });
});

describe('colluding attacks', () => {
  it('dispatch with the scenario scale as ε or z', () => {
    expect(isColludingAttack('inner-product')).toBe(true);
    expect(isColludingAttack('little-is-enough')).toBe(true);
    expect(isColludingAttack('sign-flip')).toBe(false);
    const ipm = craftColludingUpdate({ attack: 'inner-product', honest, workers: 4, attackers: 1, scale: 2 });
    expect(ipm.get('b')?.[0]).toBe(-4);
    // μ_b = 2, σ_b = √8; z_max(4, 1) = Φ⁻¹(0.5) = 0 → the mean.
    const alie = craftColludingUpdate({ attack: 'little-is-enough', honest, workers: 4, attackers: 1 });
    expect(alieZMax(4, 1)).toBe(0);
    expect(alie.get('b')?.[0]).toBe(2);
    const lone = craftColludingUpdate({ attack: 'little-is-enough', honest, workers: 1, attackers: 1 });
    expect(lone.get('b')?.[0]).toBe(2);
    expect(() => applyDeltaAttack(new Map(), { attack: 'inner-product' })).toThrow(/craftColludingUpdate/);
  });
});
