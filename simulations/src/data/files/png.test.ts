import { crc32, deflateSync } from 'node:zlib';
import { PNG, type ColorType } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { createRng } from '../../rng/random.js';
import { decodePng } from './png.js';

/** Files encoded by pngjs (a widely used independent implementation) decode to the samples it was given. */
describe('decodePng against pngjs-encoded files', () => {
  const channelsOf: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };
  for (const colorType of [0, 2, 4, 6] as ColorType[]) {
    for (const bitDepth of [8, 16] as const) {
      it(`colour type ${colorType}, ${bitDepth} bits, every filter type`, () => {
        const channels = channelsOf[colorType] ?? 0;
        const width = 7;
        const height = 5;
        const rng = createRng(colorType * 100 + bitDepth);
        const max = bitDepth === 8 ? 255 : 65535;
        const samples = Array.from({ length: width * height * channels }, () => rng.int(max + 1));
        const input = bitDepth === 8 ? Buffer.from(samples) : Buffer.from(new Uint16Array(samples).buffer);
        for (const filterType of [0, 1, 2, 3, 4, -1]) {
          const png = new PNG({
            width,
            height,
            colorType,
            inputColorType: colorType,
            bitDepth,
            inputHasAlpha: channels % 2 === 0,
          });
          png.data = input;
          const bytes = PNG.sync.write(png, {
            colorType,
            inputColorType: colorType,
            bitDepth,
            filterType,
            inputHasAlpha: channels % 2 === 0,
          });
          const image = decodePng(bytes);
          expect(image).toMatchObject({ width, height, channels });
          expect([...image.data].map((v) => Math.round(v * max))).toEqual(samples);
        }
      });
    }
  }
});

/** A PNG laid out by the specification, for what pngjs does not write (palettes, small depths, Adam7). */
function specPng(options: {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlace: boolean;
  /** Sample c of pixel (x, y). */
  sample: (x: number, y: number, c: number) => number;
  channels: number;
  palette?: number[];
}): Buffer {
  const chunk = (type: string, data: Uint8Array) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
    return Buffer.concat([head, data, crc]);
  };
  const { width, height, depth, channels } = options;
  const rows: number[] = [];
  const scanlines = (xs: number[], ys: number[]) => {
    for (const y of ys) {
      rows.push(0); // filter type None
      let bits = 0;
      let acc = 0;
      for (const x of xs)
        for (let c = 0; c < channels; c++) {
          acc = (acc << depth) | options.sample(x, y, c);
          bits += depth;
          while (bits >= 8) {
            rows.push((acc >> (bits - 8)) & 0xff);
            bits -= 8;
          }
        }
      if (bits > 0) rows.push((acc << (8 - bits)) & 0xff);
    }
  };
  const range = (start: number, end: number, step: number) =>
    Array.from({ length: Math.max(0, Math.ceil((end - start) / step)) }, (_, i) => start + i * step);
  if (!options.interlace) scanlines(range(0, width, 1), range(0, height, 1));
  else
    for (const [x0, y0, dx, dy] of [
      [0, 0, 8, 8],
      [4, 0, 8, 8],
      [0, 4, 4, 8],
      [2, 0, 4, 4],
      [0, 2, 2, 4],
      [1, 0, 2, 2],
      [0, 1, 1, 2],
    ] as const) {
      const xs = range(x0, width, dx);
      if (xs.length > 0) scanlines(xs, range(y0, height, dy));
    }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([depth, options.colorType, 0, 0, options.interlace ? 1 : 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...(options.palette ? [chunk('PLTE', Buffer.from(options.palette))] : []),
    chunk('tEXt', Buffer.from('Comment\0an ancillary chunk the decoder skips', 'latin1')),
    chunk('IDAT', deflateSync(Buffer.from(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** pngjs's decoder as the reference: RGBA, 8 bits. */
function reference(bytes: Buffer): number[] {
  return [...PNG.sync.read(bytes).data];
}

describe('decodePng on files laid out from the specification', () => {
  it('reads a 2-bit palette image as pngjs does', () => {
    const palette = [255, 0, 0, 0, 128, 0, 10, 20, 30, 255, 255, 255];
    const bytes = specPng({
      width: 5,
      height: 3,
      depth: 2,
      colorType: 3,
      interlace: false,
      channels: 1,
      palette,
      sample: (x, y) => (x + y) % 4,
    });
    const image = decodePng(bytes);
    expect(image.channels).toBe(3);
    const rgba = reference(bytes);
    const ours = [...image.data].map((v) => Math.round(v * 255));
    for (let p = 0; p < 15; p++) expect(ours.slice(p * 3, p * 3 + 3)).toEqual(rgba.slice(p * 4, p * 4 + 3));
  });

  it('reads 1- and 4-bit grey', () => {
    for (const depth of [1, 4]) {
      const max = (1 << depth) - 1;
      const value = (x: number, y: number) => (x * 3 + y * 5) % (max + 1);
      const image = decodePng(
        specPng({ width: 11, height: 2, depth, colorType: 0, interlace: false, channels: 1, sample: value }),
      );
      expect([...image.data].map((v) => Math.round(v * max))).toEqual(
        Array.from({ length: 22 }, (_, i) => value(i % 11, Math.floor(i / 11))),
      );
    }
  });

  it('reads Adam7-interlaced images as pngjs does', () => {
    const sample = (x: number, y: number, c: number) => (x * 31 + y * 17 + c * 7) % 256;
    const bytes = specPng({
      width: 10,
      height: 9,
      depth: 8,
      colorType: 2,
      interlace: true,
      channels: 3,
      sample,
    });
    const image = decodePng(bytes);
    const rgba = reference(bytes);
    const ours = [...image.data].map((v) => Math.round(v * 255));
    for (let p = 0; p < 90; p++) expect(ours.slice(p * 3, p * 3 + 3)).toEqual(rgba.slice(p * 4, p * 4 + 3));
    expect(ours.slice(0, 6)).toEqual([0, 7, 14, 31, 38, 45]);
  });

  it('refuses damaged files with the reason', () => {
    const good = specPng({
      width: 2,
      height: 2,
      depth: 8,
      colorType: 0,
      interlace: false,
      channels: 1,
      sample: () => 9,
    });
    expect(() => decodePng(new Uint8Array(good.subarray(1)))).toThrow(/bad signature/);
    const flipped = Buffer.from(good);
    flipped[20] = (flipped[20] ?? 0) ^ 1; // inside IHDR's data
    expect(() => decodePng(flipped)).toThrow(/IHDR: CRC mismatch/);
    expect(() => decodePng(good.subarray(0, good.length - 12))).toThrow(/no IEND/);
  });
});
