import { FlotillaError } from '@flotilla/protocol';
import type { Rng } from '../rng/random.js';
import type { Dataset } from './dataset.js';

/** Options for {@link rotateImages}. */
export interface RotateOptions {
  /** Counter-clockwise rotation in degrees. */
  angleDeg: number;
  /** Image width in pixels. Default 28. */
  width?: number;
  /** Image height in pixels. Default 28. */
  height?: number;
  /** Where the rotated images go (as long as `xs`, e.g. shared memory). Default: a new array. */
  out?: Float32Array;
}

/**
 * Rotates every image about its centre with bilinear interpolation (inverse mapping: each output
 * pixel samples the source at the rotated-back position; outside the source is 0, the background).
 */
export function rotateImages(xs: Float32Array, options: RotateOptions): Float32Array {
  const width = options.width ?? 28;
  const height = options.height ?? 28;
  const size = width * height;
  if (xs.length % size !== 0) {
    throw new FlotillaError(
      'SHAPE_MISMATCH',
      `image buffer length ${xs.length} is not a multiple of ${size}`,
    );
  }
  const theta = (options.angleDeg * Math.PI) / 180;
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  // The sampling grid is the same for every image: precompute the 4 taps and weights per pixel.
  const taps = new Int32Array(size * 4).fill(-1);
  const weights = new Float32Array(size * 4);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const dx = x - cx;
      const dy = y - cy;
      // Image rows grow downwards, so a counter-clockwise turn on screen uses -theta here.
      const sx = cos * dx - sin * dy + cx;
      const sy = sin * dx + cos * dy + cy;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const corners: Array<[number, number, number]> = [
        [x0, y0, (1 - fx) * (1 - fy)],
        [x0 + 1, y0, fx * (1 - fy)],
        [x0, y0 + 1, (1 - fx) * fy],
        [x0 + 1, y0 + 1, fx * fy],
      ];
      const pixel = y * width + x;
      corners.forEach(([px, py, weight], k) => {
        if (px >= 0 && px < width && py >= 0 && py < height) {
          taps[pixel * 4 + k] = py * width + px;
          weights[pixel * 4 + k] = weight;
        }
      });
    }
  }
  const out = options.out ?? new Float32Array(xs.length);
  if (out.length !== xs.length)
    throw new FlotillaError('SHAPE_MISMATCH', `rotation output of ${out.length} values for ${xs.length}`);
  for (let offset = 0; offset < xs.length; offset += size) {
    for (let pixel = 0; pixel < size; pixel += 1) {
      let value = 0;
      for (let k = 0; k < 4; k += 1) {
        const tap = taps[pixel * 4 + k] ?? -1;
        if (tap >= 0) value += (weights[pixel * 4 + k] ?? 0) * (xs[offset + tap] ?? 0);
      }
      out[offset + pixel] = value;
    }
  }
  return out;
}

/** Options for {@link addPixelNoise}. */
export interface NoiseOptions {
  /** Standard deviation of the additive Gaussian noise (pixel units, images in [0, 1]). */
  std: number;
  rng: Rng;
}

/** Adds N(0, std²) to every value and clamps to [0, 1]; returns a new buffer. */
export function addPixelNoise(xs: Float32Array, options: NoiseOptions): Float32Array {
  const out = new Float32Array(xs.length);
  for (let i = 0; i < xs.length; i += 1) {
    const value = (xs[i] ?? 0) + options.rng.normal(0, options.std);
    out[i] = Math.min(1, Math.max(0, value));
  }
  return out;
}

/** The same examples with transformed features. */
export function withFeatures(dataset: Dataset, xs: Float32Array): Dataset {
  if (xs.length !== dataset.xs.length)
    throw new FlotillaError('SHAPE_MISMATCH', 'feature buffer size changed');
  return { ...dataset, xs, ys: dataset.ys.slice() };
}
