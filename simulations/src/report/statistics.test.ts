import { describe, expect, it } from 'vitest';
import { incompleteBeta, logGamma, meanInterval, studentTCdf, studentTQuantile } from './statistics.js';

describe('Student t', () => {
  it('matches the printed table of two-sided critical values (NIST/SEMATECH e-Handbook, 1.3.6.7.2)', () => {
    // [upper-tail level, degrees of freedom, t, printed to 3 decimals]
    const table: Array<[number, number, number]> = [
      [0.975, 1, 12.706],
      [0.975, 2, 4.303],
      [0.975, 3, 3.182],
      [0.975, 4, 2.776],
      [0.975, 9, 2.262],
      [0.975, 29, 2.045],
      [0.975, 100, 1.984],
      [0.95, 5, 2.015],
      [0.99, 10, 2.764],
      [0.995, 10, 3.169],
      [0.9, 20, 1.325],
    ];
    for (const [p, df, t] of table) expect(studentTQuantile(p, df), `${p}, ${df}`).toBeCloseTo(t, 3);
    expect(studentTQuantile(0.025, 4)).toBeCloseTo(-2.776, 3);
    expect(studentTQuantile(0.5, 7)).toBeCloseTo(0, 9);
  });

  it('has the closed forms of one and two degrees of freedom (Cauchy; t/√(2 + t²))', () => {
    for (const t of [-3, -0.4, 0, 0.7, 5]) {
      expect(studentTCdf(t, 1)).toBeCloseTo(0.5 + Math.atan(t) / Math.PI, 12);
      expect(studentTCdf(t, 2)).toBeCloseTo(0.5 + t / (2 * Math.sqrt(2 + t * t)), 12);
    }
  });

  it('rests on ln Γ and the incomplete beta function', () => {
    expect(Math.exp(logGamma(5))).toBeCloseTo(24, 10);
    expect(Math.exp(logGamma(0.5))).toBeCloseTo(Math.sqrt(Math.PI), 12);
    expect(incompleteBeta(0.3, 1, 1)).toBeCloseTo(0.3, 12);
    expect(incompleteBeta(0.3, 3, 1)).toBeCloseTo(0.027, 12);
    expect(incompleteBeta(0.8, 2, 3) + incompleteBeta(0.2, 3, 2)).toBeCloseTo(1, 12);
    expect(() => studentTQuantile(1, 3)).toThrow(/in \(0, 1\)/);
  });
});

describe('meanInterval', () => {
  it('is mean ± t·s/√n', () => {
    const ci = meanInterval([1, 2, 3]);
    expect(ci.mean).toBe(2);
    expect(ci.sd).toBeCloseTo(1, 12);
    // t(0.975; 2) = 4.302653 (to 6 decimals); / √3 = 2.48414
    expect(ci.halfWidth).toBeCloseTo(2.48414, 5);
    expect([ci.low, ci.high].map((v) => Number(v?.toFixed(4)))).toEqual([-0.4841, 4.4841]);
  });

  it('gives no interval from one run and refuses none', () => {
    expect(meanInterval([0.7])).toEqual({ n: 1, mean: 0.7, sd: 0, halfWidth: null, low: null, high: null });
    expect(meanInterval([0.5, 0.5, 0.5]).halfWidth).toBe(0);
    expect(() => meanInterval([])).toThrow(/at least one/);
  });
});
