import { StrategyConfigSchema } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { aggregate, KernelArena } from '../strategies/index.js';
import { aggregateLora, refactorToRank, type TensorMap } from './lora-rules.js';
import { jacobiSvd, matrix, multiply } from './linear-algebra.js';

const A = 'base_model.model.dense.lora_A.weight';
const B = 'base_model.model.dense.lora_B.weight';
const BIAS = 'base_model.model.out.bias';

function mean(vectors: Float32Array[]): Float32Array {
  const out = new Float32Array(vectors[0]?.length ?? 0);
  for (const v of vectors) v.forEach((x, i) => (out[i] = (out[i] ?? 0) + x / vectors.length));
  return out;
}

function tensors(entries: Record<string, [number[], number[]]>): TensorMap {
  return new Map(
    Object.entries(entries).map(([name, [shape, values]]) => [
      name,
      { shape, values: Float32Array.from(values) },
    ]),
  );
}

describe('jacobiSvd', () => {
  it('finds the singular values of [[3,0],[4,5]]: 3√5 and √5 (AᵀA has eigenvalues 45 and 5)', () => {
    const { s } = jacobiSvd(matrix(2, 2, [3, 0, 4, 5]));
    expect(s[0]).toBeCloseTo(3 * Math.sqrt(5), 12);
    expect(s[1]).toBeCloseTo(Math.sqrt(5), 12);
  });
});

describe('refactorToRank', () => {
  it('reports the Eckart–Young error: diag(3,2,1) at rank 1 loses sqrt(5/14)', () => {
    const { relativeError, a, b } = refactorToRank(matrix(3, 3, [3, 0, 0, 0, 2, 0, 0, 0, 1]), 1);
    expect(relativeError).toBeCloseTo(Math.sqrt(5 / 14), 12);
    const w = multiply(b, a);
    expect(w.data[0]).toBeCloseTo(3, 12);
    expect(w.data[4]).toBeCloseTo(0, 12);
  });

  it('reconstructs a wide rank-2 matrix exactly', () => {
    const left = matrix(3, 2, [1, 2, 0, 1, 3, -1]);
    const right = matrix(2, 5, [1, 0, 2, -1, 0.5, 0, 1, 1, 3, -2]);
    const w = multiply(left, right);
    const { a, b, relativeError } = refactorToRank(w, 2);
    expect(relativeError).toBeLessThan(1e-12);
    expect(a.rows).toBe(2);
    expect(b.cols).toBe(2);
    multiply(b, a).data.forEach((v, i) => expect(v).toBeCloseTo(w.data[i] ?? 0, 10));
  });
});

describe('aggregateLora', () => {
  // 1×1 LoRA: A_i = a_i, B_i = b_i with a = (1, 3), b = (1, 3) after training from A = B = 0.
  const current = tensors({ [A]: [[1, 1], [0]], [B]: [[1, 1], [0]], [BIAS]: [[2], [1, 1]] });
  const deltas = [
    tensors({ [A]: [[1, 1], [1]], [B]: [[1, 1], [1]], [BIAS]: [[2], [1, 0]] }),
    tensors({ [A]: [[1, 1], [3]], [B]: [[1, 1], [3]], [BIAS]: [[2], [3, 0]] }),
  ];

  it('fedit reports its inexactness: mean(BA) = 5 but mean(B)·mean(A) = 4, error 0.2', () => {
    const result = aggregateLora({ rule: 'fedit', current, deltas, combine: mean, weights: [1, 1] });
    expect(result.feditRelativeError).toBeCloseTo(0.2, 6);
    expect(result.adapter.get(A)?.values[0]).toBeCloseTo(2, 6);
    expect(Array.from(result.adapter.get(BIAS)?.values ?? [])).toEqual([3, 1]);
  });

  it('product averages B·A exactly (rank 1 suffices here)', () => {
    const result = aggregateLora({ rule: 'product', current, deltas, combine: mean, weights: [1, 1] });
    const a = result.adapter.get(A)?.values[0] ?? 0;
    const b = result.adapter.get(B)?.values[0] ?? 0;
    expect(a * b).toBeCloseTo(5, 5);
    expect(result.truncationRelativeError).toBeLessThan(1e-6);
  });

  it('ffa is exact when A is frozen and refuses an A delta', () => {
    const frozen = deltas.map(
      (d) => new Map([...d].map(([k, v]) => [k, k === A ? { ...v, values: new Float32Array(1) } : v])),
    );
    const withA = tensors({ [A]: [[1, 1], [1]], [B]: [[1, 1], [0]], [BIAS]: [[2], [0, 0]] });
    const start = tensors({ [A]: [[1, 1], [2]], [B]: [[1, 1], [0]], [BIAS]: [[2], [0, 0]] });
    const result = aggregateLora({
      rule: 'ffa',
      current: start,
      deltas: frozen,
      combine: mean,
      weights: [1, 1],
    });
    // B = mean(1, 3) = 2 on the shared A = 2: the product 4 equals mean(B_i·A) = (2 + 6)/2 exactly.
    expect((result.adapter.get(B)?.values[0] ?? 0) * (result.adapter.get(A)?.values[0] ?? 0)).toBeCloseTo(
      4,
      6,
    );
    expect(() =>
      aggregateLora({ rule: 'ffa', current: start, deltas: [withA], combine: mean, weights: [1] }),
    ).toThrow(/lora_A/);
  });

  it.each(['ffa', 'fedit', 'product'] as const)(
    'full-mode kernel and bias offsets aggregate as plain tensors under the %s rule',
    (rule) => {
      const W = 'base_model.model.dense.weight';
      const WB = 'base_model.model.dense.bias';
      // Kernel offset [out 2, in 3] and bias [2]; deltas of two devices, weighted 1 : 3.
      const start = tensors({
        [W]: [
          [2, 3],
          [1, 1, 1, 1, 1, 1],
        ],
        [WB]: [[2], [0, 0]],
      });
      const fullDeltas = [
        tensors({
          [W]: [
            [2, 3],
            [4, 0, 0, 0, 0, -4],
          ],
          [WB]: [[2], [8, 0]],
        }),
        tensors({
          [W]: [
            [2, 3],
            [0, 0, 4, 0, 0, 0],
          ],
          [WB]: [[2], [0, 4]],
        }),
      ];
      const weighted = (vectors: Float32Array[]): Float32Array => {
        const out = new Float32Array(vectors[0]?.length ?? 0);
        vectors.forEach((v, k) =>
          v.forEach((x, i) => (out[i] = (out[i] ?? 0) + x * (k === 0 ? 0.25 : 0.75))),
        );
        return out;
      };
      const result = aggregateLora({
        rule,
        current: start,
        deltas: fullDeltas,
        combine: weighted,
        weights: [1, 3],
      });
      // start + 0.25·Δ₁ + 0.75·Δ₂, by hand.
      expect(Array.from(result.adapter.get(W)?.values ?? [])).toEqual([2, 1, 4, 1, 1, 0]);
      expect(result.adapter.get(W)?.shape).toEqual([2, 3]);
      expect(Array.from(result.adapter.get(WB)?.values ?? [])).toEqual([2, 3]);
      // No LoRA module: nothing inexact to report, nothing truncated.
      expect(result.feditRelativeError ?? 0).toBe(0);
      expect(result.truncationRelativeError ?? 0).toBe(0);
    },
  );
});

describe('aggregateLora under the ffa rule with a noisy combine', () => {
  it('never lets the combination (e.g. DP noise) touch the frozen A', () => {
    const current = tensors({
      [A]: [
        [1, 2],
        [0.5, -0.5],
      ],
      [B]: [[1, 1], [0]],
    });
    const deltas = [
      tensors({
        [A]: [
          [1, 2],
          [0, 0],
        ],
        [B]: [[1, 1], [1]],
      }),
    ];
    // A combine that adds +10 to every coordinate it is given, standing in for noise.
    const noisy = (vectors: Float32Array[]) => (vectors[0] ?? new Float32Array()).map((v) => v + 10);
    const result = aggregateLora({ rule: 'ffa', current, deltas, combine: noisy, weights: [1] });
    expect(Array.from(result.adapter.get(A)?.values ?? [])).toEqual([0.5, -0.5]);
    expect(Array.from(result.adapter.get(B)?.values ?? [])).toEqual([11]);
  });
});

describe('aggregateLora and the FedAvg kernel', () => {
  it('hands the strategy vectors that live in the kernel arena, for every rule', () => {
    const current = tensors({ [A]: [[1, 1], [0]], [B]: [[1, 1], [0]], [BIAS]: [[2], [1, 1]] });
    const deltas = [1, 2, 3, 4, 5].map((k) =>
      tensors({ [A]: [[1, 1], [0]], [B]: [[1, 1], [k]], [BIAS]: [[2], [k, -k]] }),
    );
    for (const rule of ['ffa', 'fedit', 'product'] as const) {
      let readInPlace: unknown = null;
      const result = aggregateLora({
        rule,
        current,
        deltas,
        weights: [1, 1, 1, 1, 1],
        combine: (vectors) => {
          expect(vectors.every((v) => KernelArena.of(v) !== null)).toBe(true);
          const { result: fedavg } = aggregate(StrategyConfigSchema.parse({ name: 'fedavg' }), [
            ...vectors.map((values) => ({ values, weight: 1 })),
          ]);
          readInPlace = fedavg.details.readInPlace;
          return fedavg.values;
        },
      });
      expect(readInPlace).toBe(5);
      // mean of k = 3 on B and on the bias's first value (A is frozen or zero)
      expect(Array.from(result.adapter.get(BIAS)?.values ?? [])).toEqual([4, -2]);
    }
  });
});
