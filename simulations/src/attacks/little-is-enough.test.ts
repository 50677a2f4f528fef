import { describe, expect, it } from 'vitest';
import { alieZMax, littleIsEnough } from './little-is-enough.js';
import { applyDeltaAttack } from './attacks.js';

describe('"a little is enough" (Baruch et al. 2019)', () => {
  // z_max = Φ⁻¹((n − s)/n) with s = ⌊n/2 + 1⌋ − m; quantiles from scipy.stats.norm.ppf.
  it.each([
    [10, 1, 0], // s = 5: (10 − 5)/10 = 0.5
    [10, 2, 0.2533471031357997], // s = 4: 0.6
    [10, 3, 0.5244005127080407], // s = 3: 0.7
    [10, 4, 0.8416212335729143], // s = 2: 0.8
    [50, 12, 0.5828415072712162], // s = 14: 0.72
    [10, 6, 1.2815515655446004], // attackers are a majority: s is taken as 1, 0.9
  ])('z_max(n = %d, m = %d) = %d', (n, m, z) => {
    expect(alieZMax(n, m)).toBeCloseTo(z, 8);
  });

  it('refuses impossible worker counts', () => {
    expect(() => alieZMax(1, 1)).toThrow(/at least 2 workers/);
    expect(() => alieZMax(10, 0)).toThrow(/attackers must be in 1\.\.10/);
    expect(() => alieZMax(10, 11)).toThrow(/attackers must be in 1\.\.10/);
  });

  it('sends the mean minus z_max sample standard deviations, coordinate by coordinate', () => {
    const honest = [
      new Map([['w', Float32Array.of(1, 0, 4)]]),
      new Map([['w', Float32Array.of(3, 0, 4)]]),
      new Map([['w', Float32Array.of(5, 0, 7)]]),
    ];
    // Means 3, 0, 5; sample standard deviations 2, 0, √3.
    const crafted = littleIsEnough({ honest, workers: 10, attackers: 2 });
    const z = 0.2533471031357997;
    expect([...(crafted.get('w') ?? [])]).toEqual(
      [3 - 2 * z, 0, 5 - Math.sqrt(3) * z].map((v) => Math.fround(v)),
    );
    const lone = littleIsEnough({ honest: [honest[0] ?? new Map()], workers: 10, attackers: 1 });
    expect([...(lone.get('w') ?? [])]).toEqual([1, 0, 4]);
    expect(littleIsEnough({ honest, workers: 10, attackers: 2, z: 1 }).get('w')?.[0]).toBe(1);
  });

  it('is not a per-device attack', () => {
    expect(() => applyDeltaAttack(new Map(), { attack: 'little-is-enough' })).toThrow(/craftColludingUpdate/);
  });
});
