import { FlotillaError, at } from '@flotilla/protocol';
import type { Rng } from '../rng/random.js';

/**
 * A labelled dataset in one flat buffer: example i occupies `xs[i*dim .. (i+1)*dim)` (row-major,
 * float32), its label is `ys[i]` in [0, numClasses).
 */
export interface Dataset {
  xs: Float32Array;
  ys: Int32Array;
  n: number;
  /** Features per example (784 for 28×28 MNIST). */
  dim: number;
  numClasses: number;
  /**
   * Shape of one example as a model takes it (its product is `dim`), e.g. [28, 28, 1] for a CNN
   * or [80] token ids for a sequence model. Default [dim].
   */
  shape?: readonly number[];
}

/** The shape of one example of `dataset`. */
export const exampleShape = (dataset: Dataset): number[] => [...(dataset.shape ?? [dataset.dim])];

/** The examples at `indices`, in that order (copies). */
export function subsetDataset(dataset: Dataset, indices: readonly number[]): Dataset {
  const { dim } = dataset;
  const xs = new Float32Array(indices.length * dim);
  const ys = new Int32Array(indices.length);
  indices.forEach((index, row) => {
    if (!Number.isInteger(index) || index < 0 || index >= dataset.n) {
      throw new FlotillaError('BAD_REQUEST', `example index ${index} out of range [0, ${dataset.n})`);
    }
    xs.set(dataset.xs.subarray(index * dim, (index + 1) * dim), row * dim);
    ys[row] = dataset.ys[index] ?? 0;
  });
  return {
    xs,
    ys,
    n: indices.length,
    dim,
    numClasses: dataset.numClasses,
    ...(dataset.shape ? { shape: dataset.shape } : {}),
  };
}

/**
 * `dataset` in SharedArrayBuffer memory (itself when it is already there, else with each buffer
 * not yet shared copied): handed to worker threads (workerData, postMessage), its buffers are
 * shared rather than cloned, so every thread reads one copy.
 */
export function shareDataset(dataset: Dataset): Dataset {
  const shared = (array: Float32Array | Int32Array) => array.buffer instanceof SharedArrayBuffer;
  if (shared(dataset.xs) && shared(dataset.ys)) return dataset;
  const xs = shared(dataset.xs) ? dataset.xs : new Float32Array(new SharedArrayBuffer(dataset.xs.byteLength));
  const ys = shared(dataset.ys) ? dataset.ys : new Int32Array(new SharedArrayBuffer(dataset.ys.byteLength));
  if (xs !== dataset.xs) xs.set(dataset.xs);
  if (ys !== dataset.ys) ys.set(dataset.ys);
  return { ...dataset, xs, ys };
}

/** A Float32Array of `length` zeros in SharedArrayBuffer memory. */
export const sharedFloat32 = (length: number): Float32Array =>
  new Float32Array(new SharedArrayBuffer(length * Float32Array.BYTES_PER_ELEMENT));

/**
 * Reorders the examples of `dataset` in place: afterwards row r holds what row `order[r]` held
 * (`order` a permutation of 0..n-1). The same result as {@link subsetDataset} with `order`,
 * without a second copy of the whole set: each cycle of the permutation is followed with one
 * example set aside.
 */
export function permuteRows(dataset: Dataset, order: readonly number[]): void {
  const { dim, n, xs, ys } = dataset;
  if (order.length !== n)
    throw new FlotillaError('BAD_REQUEST', `a permutation of ${n} rows has ${order.length}`);
  const placed = new Uint8Array(n);
  for (const index of order) {
    if (!Number.isInteger(index) || index < 0 || index >= n || placed[index] === 1)
      throw new FlotillaError('BAD_REQUEST', `not a permutation of 0..${n - 1}: ${index}`);
    placed[index] = 1;
  }
  placed.fill(0);
  const aside = new Float32Array(dim);
  for (let start = 0; start < n; start += 1) {
    if (placed[start] === 1) continue;
    aside.set(xs.subarray(start * dim, (start + 1) * dim));
    const asideLabel = at(ys, start);
    let row = start;
    for (;;) {
      placed[row] = 1;
      const from = at(order, row);
      if (from === start) {
        xs.set(aside, row * dim);
        ys[row] = asideLabel;
        break;
      }
      xs.copyWithin(row * dim, from * dim, (from + 1) * dim);
      ys[row] = at(ys, from);
      row = from;
    }
  }
}

/** Rows `from` (inclusive) to `to` (exclusive) of `dataset`, as views of its buffers (no copy). */
export function rowRange(dataset: Dataset, from: number, to: number): Dataset {
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to < from || to > dataset.n)
    throw new FlotillaError('BAD_REQUEST', `rows ${from}..${to} outside 0..${dataset.n}`);
  const { dim } = dataset;
  return {
    xs: dataset.xs.subarray(from * dim, to * dim),
    ys: dataset.ys.subarray(from, to),
    n: to - from,
    dim,
    numClasses: dataset.numClasses,
    ...(dataset.shape ? { shape: dataset.shape } : {}),
  };
}

/** Concatenates datasets of the same shape (e.g. the union of all devices' data). */
export function concatDatasets(parts: readonly Dataset[]): Dataset {
  const first = parts[0];
  if (first === undefined)
    throw new FlotillaError('BAD_REQUEST', 'concatDatasets needs at least one dataset');
  const n = parts.reduce((sum, part) => sum + part.n, 0);
  const xs = new Float32Array(n * first.dim);
  const ys = new Int32Array(n);
  let row = 0;
  for (const part of parts) {
    if (part.dim !== first.dim || part.numClasses !== first.numClasses) {
      throw new FlotillaError('SHAPE_MISMATCH', 'concatDatasets needs datasets of the same dim and classes');
    }
    xs.set(part.xs, row * first.dim);
    ys.set(part.ys, row);
    row += part.n;
  }
  return {
    xs,
    ys,
    n,
    dim: first.dim,
    numClasses: first.numClasses,
    ...(first.shape ? { shape: first.shape } : {}),
  };
}

/** Options for {@link splitDataset}. */
export interface SplitOptions {
  /** Stream that decides the (uniformly random) order before cutting. */
  rng: Rng;
  /** Fraction of examples in the test split. Default 0.2. */
  testFraction?: number;
  /** Fraction of examples in the holdout (server validation) split. Default 0.1. */
  holdoutFraction?: number;
}

/** The index sets of a train/holdout/test split; disjoint, together covering 0..n-1. */
export interface SplitIndices {
  train: number[];
  holdout: number[];
  test: number[];
}

/** Shuffles 0..n-1 with `rng` and cuts it into test, holdout and train (in that order). */
export function splitIndices(n: number, options: SplitOptions): SplitIndices {
  const testFraction = options.testFraction ?? 0.2;
  const holdoutFraction = options.holdoutFraction ?? 0.1;
  if (testFraction < 0 || holdoutFraction < 0 || testFraction + holdoutFraction >= 1) {
    throw new FlotillaError('BAD_REQUEST', 'test and holdout fractions must be >= 0 and sum to < 1');
  }
  const order = options.rng.permutation(n);
  const testCount = Math.round(n * testFraction);
  const holdoutCount = Math.round(n * holdoutFraction);
  return {
    test: order.slice(0, testCount),
    holdout: order.slice(testCount, testCount + holdoutCount),
    train: order.slice(testCount + holdoutCount),
  };
}

/** Train/holdout/test datasets cut by {@link splitIndices}. */
export function splitDataset(
  dataset: Dataset,
  options: SplitOptions,
): { train: Dataset; holdout: Dataset; test: Dataset; indices: SplitIndices } {
  const indices = splitIndices(dataset.n, options);
  return {
    train: subsetDataset(dataset, indices.train),
    holdout: subsetDataset(dataset, indices.holdout),
    test: subsetDataset(dataset, indices.test),
    indices,
  };
}
