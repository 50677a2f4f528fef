import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/backend.js';

// tfjs's wasm backend has no UnsortedSegmentSum and no Conv2DBackpropFilter; initBackend
// registers them, because training an embedding (the gradient of a gather) and a convolution's
// kernel need them.
describe('kernels added to the wasm backend', () => {
  beforeAll(async () => {
    expect((await initBackend({ prefer: 'wasm', logger: () => undefined })).name).toBe('wasm');
  });

  it('UnsortedSegmentSum sums rows by segment id and drops ids out of range', () => {
    const x = tf.tensor2d([
      [1, 2],
      [3, 4],
      [5, 6],
      [7, 8],
    ]);
    const ids = tf.tensor1d([2, 0, 2, 5], 'int32');
    const out = tf.unsortedSegmentSum(x, ids, 3);
    expect(out.shape).toEqual([3, 2]);
    expect(out.arraySync()).toEqual([
      [3, 4],
      [0, 0],
      [6, 8],
    ]);
    tf.dispose([x, ids, out]);
  });

  it('gives an embedding lookup its gradient: dL/dtable[v] sums the upstream rows of token v', () => {
    const table = tf.variable(
      tf.tensor2d([
        [0, 0],
        [0, 0],
        [0, 0],
      ]),
    );
    const tokens = tf.tensor1d([1, 2, 1], 'int32');
    const weights = tf.tensor2d([
      [1, 10],
      [2, 20],
      [3, 30],
    ]);
    // L = Σ_k w_k · table[token_k]  →  dL/dtable[1] = w_0 + w_2, dL/dtable[2] = w_1, dL/dtable[0] = 0.
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.gather(table, tokens), weights)), [table]);
    expect(grads[table.name]?.arraySync()).toEqual([
      [0, 0],
      [4, 40],
      [2, 20],
    ]);
    tf.dispose([table, tokens, weights, ...Object.values(grads)]);
  });

  it("Conv2DBackpropFilter equals the cpu backend's filter gradient (same and valid padding, strides 1 and 2)", async () => {
    const x = Array.from({ length: 2 * 7 * 6 * 3 }, (_, i) => Math.sin(i * 1.3));
    const filter = Array.from({ length: 3 * 3 * 3 * 4 }, (_, i) => Math.cos(i * 0.7));
    const gradient = (stride: number, pad: 'same' | 'valid') =>
      tf.tidy(() => {
        const input = tf.tensor4d(x, [2, 7, 6, 3]);
        const weights = tf.tensor4d(filter, [3, 3, 3, 4]);
        const loss = (w: tf.Tensor) => tf.sum(tf.square(tf.conv2d(input, w as tf.Tensor4D, stride, pad)));
        return Array.from(tf.grad(loss)(weights).dataSync());
      });
    const cases = [
      [1, 'same'],
      [2, 'valid'],
      [2, 'same'],
    ] as const;
    const wasm = cases.map(([stride, pad]) => gradient(stride, pad));
    await tf.setBackend('cpu');
    const cpu = cases.map(([stride, pad]) => gradient(stride, pad));
    await tf.setBackend('wasm');
    cases.forEach((_, k) => {
      const ours = wasm[k] ?? [];
      const reference = cpu[k] ?? [];
      expect(ours).toHaveLength(108);
      ours.forEach((v, i) => expect(v).toBeCloseTo(reference[i] ?? Number.NaN, 3));
    });
  });
});
