import { describe, expect, it } from 'vitest';
import { normalCdf, normalQuantile } from './normal-quantile.js';

describe('normalQuantile', () => {
  // Reference values: scipy.stats.norm.ppf (double precision).
  it.each([
    [0.5, 0],
    [0.6, 0.2533471031357997],
    [0.7, 0.5244005127080407],
    [0.8, 0.8416212335729143],
    [0.9, 1.2815515655446004],
    [0.95, 1.6448536269514722],
    [0.975, 1.959963984540054],
    [0.01, -2.3263478740408408],
    [1e-6, -4.753424308822899],
    [0.999, 3.090232306167813],
  ])('Φ⁻¹(%d) = %d', (p, z) => {
    expect(Math.abs(normalQuantile(p) - z)).toBeLessThan(1e-8 * Math.max(1, Math.abs(z)));
  });

  it('is antisymmetric and refuses p outside (0, 1)', () => {
    for (const p of [0.001, 0.02, 0.3, 0.45])
      expect(normalQuantile(p)).toBeCloseTo(-normalQuantile(1 - p), 9);
    for (const p of [0, 1, -0.1, Number.NaN]) expect(() => normalQuantile(p)).toThrow(/0 < p < 1/);
  });

  // Reference values: 0.5 · erfc(−z/√2) in double precision (Python's math.erfc).
  it.each([
    [0, 0.5],
    [0.5, 0.6914624612740131],
    [1, 0.8413447460685429],
    [1.959963984540054, 0.975],
    [-2.3263478740408408, 0.01],
    [3, 0.9986501019683699],
    [-4, 3.1671241833119965e-5],
  ])('Φ(%d) = %d', (z, p) => {
    expect(Math.abs(normalCdf(z) - p)).toBeLessThan(1.2e-7 * Math.min(p, 1 - p) + 1e-15);
  });
});
