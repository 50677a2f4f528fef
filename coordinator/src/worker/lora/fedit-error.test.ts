import { describe, expect, it } from 'vitest';
import { feditErrorCost, feditRelativeError } from './fedit-error.js';
import { frobeniusNorm, matrix, multiply, type Matrix } from './linear-algebra.js';
import { aggregateLora, type TensorMap } from './lora-rules.js';

const OUT = 5;
const IN = 4;
const RANK = 2;

let seed = 11;
const random = (length: number): Float32Array =>
  Float32Array.from({ length }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1);

const add = (x: Float32Array, y: ArrayLike<number>): Matrix =>
  matrix(
    1,
    x.length,
    Float64Array.from(x, (v, i) => v + (y[i] ?? 0)),
  );
const asMatrix = (rows: number, cols: number, m: Matrix): Matrix => matrix(rows, cols, m.data);
const difference = (x: Matrix, y: Matrix): Matrix =>
  matrix(
    x.rows,
    x.cols,
    Float64Array.from(x.data, (v, i) => v - (y.data[i] ?? 0)),
  );

/** The definition, with every out × in product formed explicitly. */
function bruteForce(b: Float32Array, a: Float32Array, dB: Float32Array[], dA: Float32Array[], w: number[]) {
  const total = w.reduce((s, x) => s + x, 0);
  const base = multiply(asMatrix(OUT, RANK, add(b, [])), asMatrix(RANK, IN, add(a, [])));
  const meanProduct = matrix(OUT, IN);
  const meanB = new Float64Array(b.length);
  const meanA = new Float64Array(a.length);
  dB.forEach((delta, k) => {
    const weight = (w[k] ?? 0) / total;
    const product = multiply(asMatrix(OUT, RANK, add(b, delta)), asMatrix(RANK, IN, add(a, dA[k] ?? [])));
    product.data.forEach((v, i) => (meanProduct.data[i] = (meanProduct.data[i] ?? 0) + weight * v));
    delta.forEach((v, i) => (meanB[i] = (meanB[i] ?? 0) + weight * v));
    dA[k]?.forEach((v, i) => (meanA[i] = (meanA[i] ?? 0) + weight * v));
  });
  const fedit = multiply(asMatrix(OUT, RANK, add(b, meanB)), asMatrix(RANK, IN, add(a, meanA)));
  const exactStep = difference(meanProduct, base);
  return frobeniusNorm(difference(fedit, meanProduct)) / frobeniusNorm(exactStep);
}

describe('feditRelativeError', () => {
  it('equals the definition computed with every out × in product formed', () => {
    const b = random(OUT * RANK);
    const a = random(RANK * IN);
    const deltaB = [0, 1, 2].map(() => random(OUT * RANK));
    const deltaA = [0, 1, 2].map(() => random(RANK * IN));
    const weights = [1, 3, 2];
    const expected = bruteForce(b, a, deltaB, deltaA, weights);
    expect(expected).toBeGreaterThan(0.01);
    const got = feditRelativeError({ b, a, deltaB, deltaA, weights, out: OUT, in: IN, rank: RANK });
    expect(got).toBeCloseTo(expected, 12);
  });

  it('measures against the step, not the adapter: 1×1, B = A = 1, devices move both by 1 and 3', () => {
    // Exact step: mean((2·2, 4·4)) − 1 = 9; FedIT: 3·3 − 1 = 8; error 1/9.
    const one = Float32Array.of(1);
    const deltas = [Float32Array.of(1), Float32Array.of(3)];
    const input = { b: one, a: one, deltaB: deltas, deltaA: deltas, weights: [1, 1], out: 1, in: 1, rank: 1 };
    expect(feditRelativeError(input)).toBeCloseTo(1 / 9, 14);
  });

  it('is zero when FedIT is exact: devices agree, or A does not move', () => {
    const b = random(OUT * RANK);
    const a = random(RANK * IN);
    const same = random(OUT * RANK);
    const sameA = random(RANK * IN);
    const shape = { out: OUT, in: IN, rank: RANK, weights: [2, 5] };
    expect(feditRelativeError({ ...shape, b, a, deltaB: [same, same], deltaA: [sameA, sameA] })).toBeLessThan(
      1e-12,
    );
    const still = new Float32Array(RANK * IN);
    const moved = [random(OUT * RANK), random(OUT * RANK)];
    expect(feditRelativeError({ ...shape, b, a, deltaB: moved, deltaA: [still, still] })).toBeLessThan(1e-12);
  });

  it('counts its cost from the two Gram matrices', () => {
    // 22 factors of rank 16 (20 devices, mean, base): 352 columns, 352·353/2 dots of 12,500 values.
    expect(feditErrorCost(6250, 6250, 16, 20)).toBe((12500 * 352 * 353) / 2 + 23 ** 2 * 256);
  });
});

describe('aggregateLora fedit diagnostic', () => {
  const A = 'base_model.model.dense.lora_A.weight';
  const B = 'base_model.model.dense.lora_B.weight';
  const current: TensorMap = new Map([
    [A, { shape: [RANK, IN], values: random(RANK * IN) }],
    [B, { shape: [OUT, RANK], values: random(OUT * RANK) }],
  ]);
  const deltas: TensorMap[] = [0, 1].map(
    () =>
      new Map([
        [A, { shape: [RANK, IN], values: random(RANK * IN) }],
        [B, { shape: [OUT, RANK], values: random(OUT * RANK) }],
      ]),
  );
  const mean = (vectors: Float32Array[]) =>
    Float32Array.from(
      vectors[0] ?? [],
      (_, i) => vectors.reduce((s, v) => s + (v[i] ?? 0), 0) / vectors.length,
    );

  it('reports the module error, or null when it would cost more than the budget', () => {
    const input = { rule: 'fedit' as const, current, deltas, combine: mean, weights: [1, 1] };
    const expected = bruteForce(
      current.get(B)?.values ?? new Float32Array(0),
      current.get(A)?.values ?? new Float32Array(0),
      deltas.map((d) => d.get(B)?.values ?? new Float32Array(0)),
      deltas.map((d) => d.get(A)?.values ?? new Float32Array(0)),
      [1, 1],
    );
    expect(aggregateLora(input).feditRelativeError).toBeCloseTo(expected, 12);
    expect(aggregateLora({ ...input, feditMaxCost: 100 }).feditRelativeError).toBeNull();
  });
});
