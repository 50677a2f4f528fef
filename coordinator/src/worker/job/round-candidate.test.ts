import { describe, expect, it } from 'vitest';
import { RdpAccountant } from '../privacy/accountant.js';
import type { ComputeRoundResult } from './compute-round.js';
import { decodeCandidate, encodeCandidate } from './round-candidate.js';

const tensor = (...values: number[]) => ({ shape: [values.length], values: Float32Array.from(values) });

describe('round candidate codec', () => {
  it('restores every field of a DP FedAdam candidate, accountant included', () => {
    const accountant = new RdpAccountant().step({ q: 1, noiseMultiplier: 1 }).toJSON();
    const result: ComputeRoundResult = {
      adapter: new Map([
        ['m.lora_A.weight', tensor(1, 2)],
        ['m.lora_B.weight', tensor(0.5)],
      ]),
      lora: {
        rule: 'fedit',
        feditRelativeError: null,
        truncationRelativeError: null,
        step: new Map([['m.lora_A.weight', tensor(0.25, -0.5)]]),
      },
      strategy: 'fedadam',
      selected: [0, 1, 2],
      details: { totalWeight: 3, noiseStd: 0.5 },
      optimizerState: {
        strategy: 'fedadam',
        step: 4,
        buffers: { m: Float32Array.of(1, 2), v: Float32Array.of(3) },
      },
      privacy: {
        noiseMultiplier: 1,
        noiseStd: 0.5,
        clipNorm: 2,
        nextClipNorm: 2.1,
        epsilon: 1.5,
        delta: 1e-5,
        releases: [
          { query: 'update-sum', sensitivity: 2, noiseStd: 2.2 },
          { query: 'unclipped-count', sensitivity: 0.5, noiseStd: 0.15 },
        ],
        accountant,
      },
    };
    const back = decodeCandidate(encodeCandidate(result));
    expect(back).toEqual(result);
    // The accountant still works after the round trip (its orders include 'Infinity').
    expect(RdpAccountant.fromJSON(back.privacy?.accountant).getEpsilon(1e-5).epsilon).toBe(
      RdpAccountant.fromJSON(accountant).getEpsilon(1e-5).epsilon,
    );
  });

  it('keeps a candidate without step, optimizer or privacy as such', () => {
    const result: ComputeRoundResult = {
      adapter: new Map([['b', tensor(1)]]),
      lora: { rule: 'product', feditRelativeError: null, truncationRelativeError: 0.1, step: null },
      strategy: 'fedavg',
      selected: [0],
      details: {},
      optimizerState: undefined,
      privacy: null,
    };
    expect(decodeCandidate(encodeCandidate(result))).toEqual(result);
  });
});
