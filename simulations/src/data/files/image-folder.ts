import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FlotillaError } from '@flotilla/protocol';
import { groupByUser, labeledData, type LabeledData } from './labeled.js';
import { decodePng, type DecodedImage } from './png.js';

/** Options for {@link loadImageFolder}. */
export interface ImageFolderOptions {
  path: string;
  /**
   * `class`: `<path>/<class>/*.png` (partitioned over devices by the scenario's scheme);
   * `user-class`: `<path>/<user>/<class>/*.png` (one device per user). Default `class`.
   */
  layout?: 'class' | 'user-class';
  /** 1: grey (ITU-R BT.601 luma of colour images), 3: RGB (grey replicated). Default 1. */
  channels?: 1 | 3;
  /** [height, width] every image is resampled to (bilinear). Default: the images' own size, which must agree. */
  size?: [number, number];
}

const subdirectories = (path: string): string[] =>
  readdirSync(path)
    .filter((name) => !name.startsWith('.') && statSync(join(path, name)).isDirectory())
    .sort();

const pngFiles = (path: string): string[] =>
  readdirSync(path)
    .filter((name) => name.toLowerCase().endsWith('.png'))
    .sort()
    .map((name) => join(path, name));

/** Converts a decoded image to `channels` channels (alpha dropped). */
function toChannels(image: DecodedImage, channels: 1 | 3): Float32Array {
  const pixels = image.width * image.height;
  const out = new Float32Array(pixels * channels);
  const colour = image.channels >= 3;
  for (let p = 0; p < pixels; p++) {
    const base = p * image.channels;
    const r = image.data[base] ?? 0;
    const g = colour ? (image.data[base + 1] ?? 0) : r;
    const b = colour ? (image.data[base + 2] ?? 0) : r;
    if (channels === 1) out[p] = 0.299 * r + 0.587 * g + 0.114 * b;
    else out.set([r, g, b], p * 3);
  }
  return out;
}

/** Bilinear resampling (pixel centres aligned) of an [h, w, c] image to [height, width, c]. */
export function resizeBilinear(
  src: Float32Array,
  from: { height: number; width: number },
  to: { height: number; width: number },
  channels: number,
): Float32Array {
  if (from.height === to.height && from.width === to.width) return src;
  const out = new Float32Array(to.height * to.width * channels);
  const at = (y: number, x: number, c: number) => src[(y * from.width + x) * channels + c] ?? 0;
  for (let y = 0; y < to.height; y++) {
    const sy = Math.min(from.height - 1, Math.max(0, ((y + 0.5) * from.height) / to.height - 0.5));
    const y0 = Math.floor(sy);
    const y1 = Math.min(from.height - 1, y0 + 1);
    const fy = sy - y0;
    for (let x = 0; x < to.width; x++) {
      const sx = Math.min(from.width - 1, Math.max(0, ((x + 0.5) * from.width) / to.width - 0.5));
      const x0 = Math.floor(sx);
      const x1 = Math.min(from.width - 1, x0 + 1);
      const fx = sx - x0;
      for (let c = 0; c < channels; c++) {
        const top = at(y0, x0, c) * (1 - fx) + at(y0, x1, c) * fx;
        const bottom = at(y1, x0, c) * (1 - fx) + at(y1, x1, c) * fx;
        out[(y * to.width + x) * channels + c] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  return out;
}

/**
 * Reads an image folder of PNG files: class names are the sorted folder names (class i is the
 * i-th), samples are scaled to [0, 1], an example's shape is [height, width, channels].
 */
export function loadImageFolder(options: ImageFolderOptions): LabeledData {
  const layout = options.layout ?? 'class';
  const channels = options.channels ?? 1;
  const entries: Array<{ file: string; className: string; user: string }> = [];
  const collect = (dir: string, user: string) => {
    for (const className of subdirectories(dir))
      for (const file of pngFiles(join(dir, className))) entries.push({ file, className, user });
  };
  if (layout === 'class') collect(options.path, '');
  else for (const user of subdirectories(options.path)) collect(join(options.path, user), user);
  if (entries.length === 0)
    throw new FlotillaError(
      'BAD_REQUEST',
      `${options.path}: no PNG files in ${layout === 'class' ? '<class>/' : '<user>/<class>/'} folders`,
    );
  const classNames = [...new Set(entries.map((e) => e.className))].sort();
  const classIndex = new Map(classNames.map((name, i) => [name, i]));
  let size = options.size ? { height: options.size[0], width: options.size[1] } : null;
  const images: Float32Array[] = [];
  for (const { file } of entries) {
    let image: DecodedImage;
    try {
      image = decodePng(readFileSync(file));
    } catch (error) {
      throw new FlotillaError(
        'CORRUPT_FILE',
        `${file}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    size ??= { height: image.height, width: image.width };
    if (!options.size && (image.height !== size.height || image.width !== size.width))
      throw new FlotillaError(
        'SHAPE_MISMATCH',
        `${file} is ${image.width}x${image.height}, the first image ${size.width}x${size.height}; set size to resample`,
      );
    images.push(resizeBilinear(toChannels(image, channels), image, size, channels));
  }
  const height = size?.height ?? 0;
  const width = size?.width ?? 0;
  const shape = [height, width, channels];
  const dim = height * width * channels;
  const xs = new Float32Array(images.length * dim);
  images.forEach((image, i) => xs.set(image, i * dim));
  const ys = Int32Array.from(entries, (e) => classIndex.get(e.className) ?? -1);
  const users = layout === 'user-class' ? groupByUser(entries.map((e) => e.user)) : null;
  return labeledData({ xs, ys, shape, classNames, users });
}
