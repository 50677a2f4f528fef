import { FlotillaError } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { RdpAccountant } from './accountant.js';
import { loadDpVectors, relativeError } from './dp-vectors.fixture.js';
import { solveNoiseMultiplier } from './solve-noise.js';
import { computeRdp } from './rdp.js';
import { epsilonFromRdp } from '@flotilla/protocol';

const vectors = loadDpVectors();

function setting(name: string): (typeof vectors.published_settings)[number] {
  const found = vectors.published_settings.find((s) => s.name === name);
  if (found === undefined) throw new Error(`missing vector ${name}`);
  return found;
}

describe('RdpAccountant', () => {
  it('reaches the published epsilon when rounds are stepped one at a time', () => {
    const s = setting('fl_50of1000_z1.0_T200');
    const accountant = new RdpAccountant();
    for (let round = 0; round < s.T; round++) accountant.step({ q: s.q, noiseMultiplier: s.sigma });
    expect(accountant.totalSteps).toBe(s.T);
    expect(accountant.history).toEqual([{ q: s.q, noiseMultiplier: s.sigma, steps: s.T }]);
    const spent = accountant.getEpsilon(s.delta);
    expect(relativeError(spent.epsilon, s.eps)).toBeLessThan(1e-6);
    expect(spent.order).toBe(s.opt_order);
    expect(
      relativeError(accountant.getEpsilon(s.delta, 'classic').epsilon, s.eps_basic_conversion),
    ).toBeLessThan(1e-6);
  });

  it('spends nothing before the first step', () => {
    expect(new RdpAccountant().getEpsilon(1e-5).epsilon).toBe(0);
  });

  it('composes heterogeneous steps additively', () => {
    const a = new RdpAccountant({ orders: [2, 8, 32] }).step({ q: 0.01, noiseMultiplier: 1, steps: 10 });
    a.step({ q: 0.02, noiseMultiplier: 2, steps: 5 });
    const first = computeRdp({ q: 0.01, noiseMultiplier: 1, steps: 10, orders: [2, 8, 32] });
    const second = computeRdp({ q: 0.02, noiseMultiplier: 2, steps: 5, orders: [2, 8, 32] });
    a.rdp.forEach((value, k) => expect(value).toBeCloseTo((first[k] ?? 0) + (second[k] ?? 0), 14));
    expect(a.history).toHaveLength(2);
  });

  it('round-trips through JSON, including infinite RDP', () => {
    const a = new RdpAccountant().step({ q: 0.05, noiseMultiplier: 1, steps: 20 });
    const restored = RdpAccountant.fromJSON(JSON.parse(JSON.stringify(a)));
    expect(restored.rdp).toEqual(a.rdp);
    expect(restored.getEpsilon(1e-3)).toEqual(a.getEpsilon(1e-3));
    const noNoise = new RdpAccountant({ orders: [2, Infinity] }).step({ q: 0.1, noiseMultiplier: 0 });
    const again = RdpAccountant.fromJSON(JSON.parse(JSON.stringify(noNoise)));
    expect(again.rdp).toEqual([Infinity, Infinity]);
    expect(again.orders).toEqual([2, Infinity]);
  });

  it('rejects a corrupt state', () => {
    expect(() => RdpAccountant.fromJSON({ version: 1, orders: [2, 3], rdp: [0.1], history: [] })).toThrow(
      FlotillaError,
    );
    expect(() => RdpAccountant.fromJSON({ version: 1, orders: [2], rdp: [-1], history: [] })).toThrow(
      FlotillaError,
    );
    expect(() => RdpAccountant.fromJSON({ orders: [2], rdp: [1] })).toThrow(/invalid accountant state/);
  });

  it('wouldExceed says when the next round crosses the budget', () => {
    const s = setting('fl_50of1000_z1.0_T200');
    const accountant = new RdpAccountant().step({ q: s.q, noiseMultiplier: s.sigma, steps: s.T - 1 });
    const next = { q: s.q, noiseMultiplier: s.sigma };
    expect(accountant.wouldExceed(s.eps * (1 + 1e-9), s.delta, next)).toBe(false);
    expect(accountant.wouldExceed(s.eps * (1 - 1e-9), s.delta, next)).toBe(true);
    // Asking does not spend.
    expect(accountant.totalSteps).toBe(s.T - 1);
  });
});

describe('solveNoiseMultiplier', () => {
  it('recovers the published noise multiplier from the published epsilon', () => {
    for (const name of ['tfp_mnist_256_1.3_15ep', 'q0.01_sigma4_T10000', 'fl_50of1000_z1.0_T200']) {
      const s = setting(name);
      const z = solveNoiseMultiplier({ targetEpsilon: s.eps, q: s.q, steps: s.T, delta: s.delta });
      expect(Math.abs(z - s.sigma) / s.sigma, name).toBeLessThan(2e-6);
    }
  });

  it('round-trips with computeRdp and epsilonFromRdp, on the conservative side', () => {
    for (const [targetEpsilon, conversion] of [
      [1, 'improved'],
      [3, 'classic'],
      [8, 'improved'],
    ] as const) {
      const options = { targetEpsilon, q: 0.02, steps: 500, delta: 1e-5, conversion };
      const z = solveNoiseMultiplier(options);
      const orders = vectors.orders;
      const epsAt = (noise: number): number =>
        epsilonFromRdp({
          orders,
          rdp: computeRdp({ q: 0.02, noiseMultiplier: noise, steps: 500, orders }),
          delta: 1e-5,
          conversion,
        }).epsilon;
      expect(epsAt(z)).toBeLessThanOrEqual(targetEpsilon);
      expect(epsAt(z * (1 - 2e-6))).toBeGreaterThan(targetEpsilon);
    }
  });

  it('refuses impossible targets', () => {
    expect(() =>
      solveNoiseMultiplier({ targetEpsilon: 1e-9, q: 1, steps: 1000, delta: 1e-5, maxNoiseMultiplier: 100 }),
    ).toThrow(FlotillaError);
  });
});
