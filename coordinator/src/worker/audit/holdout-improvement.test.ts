import { describe, expect, it } from 'vitest';
import { binomialHalfUpperTail, holdoutImprovement } from './holdout-improvement.js';

/** Per-example results: `both` right with both adapters, then `onlyA` right only with A, `onlyB` only with B, the rest wrong. */
function outcomes(n: number, both: number, onlyA: number, onlyB: number): { a: Uint8Array; b: Uint8Array } {
  const a = new Uint8Array(n);
  const b = new Uint8Array(n);
  for (let i = 0; i < both; i++) a[i] = b[i] = 1;
  for (let i = both; i < both + onlyA; i++) a[i] = 1;
  for (let i = both + onlyA; i < both + onlyA + onlyB; i++) b[i] = 1;
  return { a, b };
}

describe('holdout improvement beyond noise', () => {
  // References: Σ_{j>=k} C(n, j) / 2^n computed exactly (Python's math.comb).
  it('computes the exact binomial(n, 1/2) upper tail', () => {
    expect(binomialHalfUpperTail(8, 10)).toBeCloseTo(56 / 1024, 15);
    expect(binomialHalfUpperTail(60, 100)).toBeCloseTo(0.028443966820490395, 13);
    expect(binomialHalfUpperTail(520, 1000)).toBeCloseTo(0.10872414660207047, 12);
    expect(binomialHalfUpperTail(0, 5)).toBe(1);
    expect(binomialHalfUpperTail(6, 5)).toBe(0);
  });

  it('uses the exact paired (McNemar) test on the same examples', () => {
    // 45 discordant pairs for the candidate, 15 against: p = 6.7e-5.
    const clear = outcomes(1000, 500, 45, 15);
    const better = holdoutImprovement({
      candidate: { accuracy: 0.545, correct: clear.a },
      current: { accuracy: 0.515, correct: clear.b },
      significance: 0.05,
    });
    expect(better?.test).toBe('paired-exact');
    expect(better?.pValue).toBeCloseTo(6.725704046424766e-5, 15);
    expect(better?.beyondNoise).toBe(true);
    expect(better?.reason).toMatch(/45 right only with the candidate, 15 only with the current adapter/);
    // 35 against 25: +1 pp on 1,000 examples is noise (p = 0.12).
    const close = outcomes(1000, 500, 35, 25);
    const noise = holdoutImprovement({
      candidate: { correct: close.a },
      current: { correct: close.b },
      significance: 0.05,
    });
    expect(noise?.pValue).toBeCloseTo(0.12253041651147285, 12);
    expect(noise?.beyondNoise).toBe(false);
  });

  it('falls back to binomial standard errors from accuracies and the holdout size', () => {
    // The Krum candidate: 48.0% -> 60.9% on a 1,000-example holdout.
    const krum = holdoutImprovement({
      candidate: { accuracy: 0.609, examples: 1000 },
      current: { accuracy: 0.48, examples: 1000 },
      significance: 0.05,
    });
    expect(krum?.test).toBe('binomial-se');
    expect(krum?.beyondNoise).toBe(true);
    // SE = √((0.609·0.391 + 0.48·0.52) / 1000) = 2.208%; z = 5.84; p = 2.6e-9.
    expect(krum?.pValue).toBeLessThan(1e-8);
    const small = holdoutImprovement({
      candidate: { accuracy: 0.5, examples: 1000 },
      current: { accuracy: 0.48, examples: 1000 },
      significance: 0.05,
    });
    expect(small?.beyondNoise).toBe(false);
    expect(
      holdoutImprovement({ candidate: { accuracy: 0.6 }, current: { accuracy: 0.5 }, significance: 0.05 }),
    ).toBeNull();
  });
});
