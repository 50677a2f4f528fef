import { crc32, inflateSync } from 'node:zlib';
import { FlotillaError } from '@flotilla/protocol';

// A PNG decoder after the W3C PNG specification (2nd edition): chunks with CRC-32, IHDR, PLTE,
// IDAT (one zlib stream across chunks), IEND; colour types 0 (grey), 2 (RGB), 3 (palette), 4
// (grey + alpha), 6 (RGBA); bit depths 1, 2, 4, 8 and 16; the five scanline filters; Adam7
// interlacing. Ancillary chunks (tRNS, gAMA, text…) are skipped: alpha is read from the pixels of
// colour types 4 and 6 only, and no gamma correction is applied.

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Channels of each colour type before palette expansion. */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, readonly number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};
/** Adam7 passes: x start, y start, x step, y step. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;
/** Largest image accepted, in pixels (a guard against a header promising gigabytes). */
const MAX_PIXELS = 64 * 1024 * 1024;

/** A decoded image: samples scaled to [0, 1], row-major, channels interleaved. */
export interface DecodedImage {
  width: number;
  height: number;
  /** 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA (a palette image is RGB). */
  channels: number;
  data: Float32Array;
}

const bad = (message: string) => new FlotillaError('CORRUPT_FILE', `png: ${message}`);

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Undoes the scanline filters of one (sub-)image in place; returns the filtered-out rows. */
function unfilter(
  raw: Uint8Array,
  offset: number,
  rowBytes: number,
  rows: number,
  bpp: number,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  let previous = new Uint8Array(rowBytes);
  for (let y = 0; y < rows; y++) {
    const start = offset + y * (rowBytes + 1);
    if (start + rowBytes + 1 > raw.length) throw bad('image data ends early');
    const filter = raw[start];
    const row = raw.slice(start + 1, start + 1 + rowBytes);
    for (let x = 0; x < rowBytes; x++) {
      const a = x >= bpp ? (row[x - bpp] ?? 0) : 0;
      const b = previous[x] ?? 0;
      const c = x >= bpp ? (previous[x - bpp] ?? 0) : 0;
      const value = row[x] ?? 0;
      switch (filter) {
        case 0:
          break;
        case 1:
          row[x] = (value + a) & 0xff;
          break;
        case 2:
          row[x] = (value + b) & 0xff;
          break;
        case 3:
          row[x] = (value + ((a + b) >> 1)) & 0xff;
          break;
        case 4:
          row[x] = (value + paeth(a, b, c)) & 0xff;
          break;
        default:
          throw bad(`unknown filter type ${String(filter)} in row ${y}`);
      }
    }
    out.push(row);
    previous = row;
  }
  return out;
}

/** Sample `index` of a scanline at `depth` bits per sample, as an integer. */
function sample(row: Uint8Array, index: number, depth: number): number {
  if (depth === 8) return row[index] ?? 0;
  if (depth === 16) return ((row[2 * index] ?? 0) << 8) | (row[2 * index + 1] ?? 0);
  const bit = index * depth;
  const byte = row[bit >> 3] ?? 0;
  return (byte >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
}

/** Decodes a PNG file's bytes. */
export function decodePng(bytes: Uint8Array): DecodedImage {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b))
    throw bad('not a PNG file (bad signature)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let header: { width: number; height: number; depth: number; colorType: number; interlace: number } | null =
    null;
  let palette: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (pos + 12 <= bytes.length && !ended) {
    const length = view.getUint32(pos);
    const typeBytes = bytes.subarray(pos + 4, pos + 8);
    const type = String.fromCharCode(...typeBytes);
    const dataEnd = pos + 8 + length;
    if (dataEnd + 4 > bytes.length) throw bad(`chunk ${type} runs past the end of the file`);
    const data = bytes.subarray(pos + 8, dataEnd);
    if (crc32(bytes.subarray(pos + 4, dataEnd)) >>> 0 !== view.getUint32(dataEnd))
      throw bad(`chunk ${type}: CRC mismatch`);
    if (type === 'IHDR') {
      if (length !== 13) throw bad('IHDR must be 13 bytes');
      const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
      header = {
        width: dv.getUint32(0),
        height: dv.getUint32(4),
        depth: data[8] ?? 0,
        colorType: data[9] ?? 0,
        interlace: data[12] ?? 0,
      };
      if (data[10] !== 0 || data[11] !== 0) throw bad('unknown compression or filter method');
    } else if (type === 'PLTE') palette = data.slice();
    else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') ended = true;
    else if ((typeBytes[0] ?? 0) & 0x20) {
      // Ancillary chunk (lower-case first letter): safe to skip.
    } else throw bad(`unknown critical chunk ${type}`);
    pos = dataEnd + 4;
  }
  if (!header) throw bad('no IHDR chunk');
  if (!ended) throw bad('no IEND chunk');
  const { width, height, depth, colorType, interlace } = header;
  const channels = CHANNELS[colorType];
  if (channels === undefined || !(DEPTHS[colorType] ?? []).includes(depth))
    throw bad(`colour type ${colorType} with bit depth ${depth} is not valid PNG`);
  if (interlace > 1) throw bad(`unknown interlace method ${interlace}`);
  if (width === 0 || height === 0 || width * height > MAX_PIXELS)
    throw bad(`image size ${width}x${height} is out of range`);
  if (colorType === 3 && (palette === null || palette.length % 3 !== 0))
    throw bad('palette image without a valid PLTE chunk');
  let raw: Uint8Array;
  try {
    raw = new Uint8Array(inflateSync(Buffer.concat(idat)));
  } catch (error) {
    throw bad(`image data does not inflate (${error instanceof Error ? error.message : String(error)})`);
  }
  const outChannels = colorType === 3 ? 3 : channels;
  const out = new Float32Array(width * height * outChannels);
  const max = (1 << depth) - 1;
  const bitsPerPixel = channels * depth;
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const put = (rows: Uint8Array[], x0: number, y0: number, dx: number, dy: number, w: number) => {
    rows.forEach((row, ry) => {
      for (let rx = 0; rx < w; rx++) {
        const target = ((y0 + ry * dy) * width + (x0 + rx * dx)) * outChannels;
        if (colorType === 3) {
          const entry = sample(row, rx, depth);
          if (palette === null || (entry + 1) * 3 > palette.length)
            throw bad(`palette index ${entry} out of range`);
          for (let c = 0; c < 3; c++) out[target + c] = (palette[entry * 3 + c] ?? 0) / 255;
        } else {
          for (let c = 0; c < channels; c++) out[target + c] = sample(row, rx * channels + c, depth) / max;
        }
      }
    });
  };
  if (interlace === 0) {
    const rowBytes = Math.ceil((width * bitsPerPixel) / 8);
    put(unfilter(raw, 0, rowBytes, height, bpp), 0, 0, 1, 1, width);
  } else {
    let offset = 0;
    for (const [x0, y0, dx, dy] of ADAM7) {
      const w = Math.ceil((width - x0) / dx);
      const h = Math.ceil((height - y0) / dy);
      if (w <= 0 || h <= 0) continue;
      const rowBytes = Math.ceil((w * bitsPerPixel) / 8);
      put(unfilter(raw, offset, rowBytes, h, bpp), x0, y0, dx, dy, w);
      offset += h * (rowBytes + 1);
    }
  }
  return { width, height, channels: outChannels, data: out };
}
