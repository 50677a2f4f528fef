import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DEFAULT_ORDERS, deltaFromRdp, epsilonFromRdp } from '@flotilla/protocol';
import { loadDpVectors, NumberListSchema, relativeError } from './dp-vectors.fixture.js';
import { computeRdp, rdpSampledGaussian } from './rdp.js';

const vectors = loadDpVectors();
const REL = 1e-6;

function unitTest(call: string): { expected: unknown; ours: unknown } {
  const found = vectors.rdp_unit_tests.find((t) => t.call === call);
  if (found === undefined) throw new Error(`vector not found: ${call}`);
  return found;
}

const intRange = (from: number, toExclusive: number): number[] =>
  Array.from({ length: toExclusive - from }, (_, i) => from + i);

describe('DEFAULT_ORDERS', () => {
  it('is the orders list of the published vectors', () => {
    expect([...DEFAULT_ORDERS]).toEqual(vectors.orders);
  });
});

describe('computeRdp against TF Privacy rdp_accountant_test values', () => {
  it('q=0.1, z=2, T=10, alpha=5', () => {
    const ours = z
      .number()
      .parse(unitTest('compute_rdp(q=0.1, noise_multiplier=2, steps=10, orders=5)').ours);
    const [rdp] = computeRdp({ q: 0.1, noiseMultiplier: 2, steps: 10, orders: [5] });
    expect(relativeError(rdp ?? Number.NaN, ours)).toBeLessThan(REL);
  });

  it('q=0.01, z=2.5, T=50, fractional, integer and infinite orders', () => {
    const t = unitTest('compute_rdp(q=0.01, noise_multiplier=2.5, steps=50, orders=[1.5,2.5,5,50,100,inf])');
    const ours = NumberListSchema.parse(t.ours);
    const rdp = computeRdp({
      q: 0.01,
      noiseMultiplier: 2.5,
      steps: 50,
      orders: [1.5, 2.5, 5, 50, 100, Infinity],
    });
    expect(rdp).toHaveLength(ours.length);
    rdp.forEach((value, k) => expect(relativeError(value, ours[k] ?? Number.NaN)).toBeLessThan(REL));
    expect(rdp[5]).toBe(Infinity);
  });

  it('q=1 gives alpha / (2 z^2) and q=0 gives 0', () => {
    const full = z.number().parse(unitTest('compute_rdp(q=1, noise_multiplier=10, steps=1, orders=20)').ours);
    const none = z.number().parse(unitTest('compute_rdp(q=0, noise_multiplier=10, steps=1, orders=20)').ours);
    expect(computeRdp({ q: 1, noiseMultiplier: 10, steps: 1, orders: [20] })[0]).toBeCloseTo(full, 15);
    expect(computeRdp({ q: 0, noiseMultiplier: 10, steps: 1, orders: [20] })[0]).toBe(none);
  });

  it('get_privacy_spent: eps and delta on orders 2..32 with constant rdp 1.1', () => {
    const orders = intRange(2, 33);
    const rdp = orders.map(() => 1.1);
    const byDelta = z
      .object({ eps: z.number(), opt_order: z.number() })
      .parse(unitTest('get_privacy_spent(orders=range(2,33), rdp=[1.1]*31, target_delta=1e-5)').ours);
    const eps = epsilonFromRdp({ orders, rdp, delta: 1e-5 });
    expect(relativeError(eps.epsilon, byDelta.eps)).toBeLessThan(REL);
    expect(eps.order).toBe(byDelta.opt_order);
    const byEps = z
      .object({ delta: z.number(), opt_order: z.number() })
      .parse(unitTest('get_privacy_spent(orders=range(2,33), rdp=[1.1]*31, target_eps=1.32783806176)').ours);
    const delta = deltaFromRdp({ orders, rdp, epsilon: 1.32783806176 });
    expect(relativeError(delta.delta, byEps.delta)).toBeLessThan(REL);
    expect(delta.order).toBe(byEps.opt_order);
  });
});

describe('published settings (TF Privacy tutorial, Abadi et al. 2016, Bu et al. 2020, FL settings)', () => {
  // The vectors' eps_int_orders are reproduced by the integer orders of the list: 2..63 and 128..1024.
  const integerOrders = vectors.orders.filter((a) => Number.isInteger(a));

  for (const s of vectors.published_settings) {
    it(s.name, () => {
      const rdp = computeRdp({ q: s.q, noiseMultiplier: s.sigma, steps: s.T, orders: vectors.orders });
      const improved = epsilonFromRdp({ orders: vectors.orders, rdp, delta: s.delta });
      expect(relativeError(improved.epsilon, s.eps)).toBeLessThan(REL);
      expect(improved.order).toBe(s.opt_order);
      const classic = epsilonFromRdp({ orders: vectors.orders, rdp, delta: s.delta, conversion: 'classic' });
      expect(relativeError(classic.epsilon, s.eps_basic_conversion)).toBeLessThan(REL);
      const intRdp = computeRdp({ q: s.q, noiseMultiplier: s.sigma, steps: s.T, orders: integerOrders });
      const intEps = epsilonFromRdp({ orders: integerOrders, rdp: intRdp, delta: s.delta });
      expect(relativeError(intEps.epsilon, s.eps_int_orders)).toBeLessThan(REL);
    });
  }
});

describe('rdpSampledGaussian against a 60-digit evaluation of A_alpha', () => {
  // mpmath 1.3, mp.dps = 60: log(A_alpha) / (alpha - 1) with A_alpha summed directly (binomial sum
  // for integer alpha; the two erfc series of Mironov et al. 2019, 400 terms, for fractional alpha).
  const cases: Array<{ q: number; z: number; alpha: number; rdp: number; rel: number }> = [
    { q: 0.05, z: 0.8, alpha: 32, rdp: 21.907631201492654458, rel: 1e-13 },
    { q: 0.001, z: 1.1, alpha: 256, rdp: 98.850279451571846465, rel: 1e-13 },
    { q: 0.5, z: 1, alpha: 2.5, rdp: 0.51056038092367230047, rel: 1e-12 },
    { q: 0.9, z: 5, alpha: 10.9, rdp: 0.1824989130680065003, rel: 1e-12 },
    { q: 0.004266666666666667, z: 0.7, alpha: 3.4, rdp: 0.00023760941899610299046, rel: 1e-9 },
    // log A ≈ 1.7e-10: log-space cancellation limits any double implementation (TF Privacy's
    // value is off by 3e-7 here; ours by 3e-9).
    { q: 1e-4, z: 20, alpha: 3.7, rdp: 4.6307880426567692898e-11, rel: 1e-8 },
  ];
  for (const c of cases) {
    it(`q=${c.q}, z=${c.z}, alpha=${c.alpha}`, () => {
      expect(relativeError(rdpSampledGaussian(c.q, c.z, c.alpha), c.rdp)).toBeLessThan(c.rel);
    });
  }
});
