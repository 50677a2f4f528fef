import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadImageFolder, resizeBilinear } from './image-folder.js';

const root = mkdtempSync(join(tmpdir(), 'flotilla-images-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Writes an RGB PNG (pngjs) whose pixel (x, y) is `rgb(x, y)`. */
function writeRgb(
  path: string,
  width: number,
  height: number,
  rgb: (x: number, y: number) => number[],
): void {
  const png = new PNG({ width, height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  const data: number[] = [];
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.push(...rgb(x, y));
  png.data = Buffer.from(data);
  writeFileSync(path, PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false }));
}

describe('loadImageFolder', () => {
  it('round-trips a <class>/*.png folder: classes in sorted order, grey by BT.601 luma', () => {
    const dir = join(root, 'by-class');
    for (const name of ['zebra', 'cat']) mkdirSync(join(dir, name), { recursive: true });
    writeRgb(join(dir, 'zebra', 'a.png'), 3, 2, () => [255, 0, 0]);
    writeRgb(join(dir, 'cat', 'b.png'), 3, 2, (x) => [0, x * 100, 0]);
    writeRgb(join(dir, 'cat', 'c.png'), 3, 2, () => [0, 0, 255]);
    writeFileSync(join(dir, 'cat', 'notes.txt'), 'not an image');
    const data = loadImageFolder({ path: dir });
    expect(data.classNames).toEqual(['cat', 'zebra']);
    expect(data.shape).toEqual([2, 3, 1]);
    expect([...data.ys]).toEqual([0, 0, 1]);
    expect(data.xs[1]).toBeCloseTo((0.587 * 100) / 255, 6);
    expect(data.xs[6]).toBeCloseTo(0.114, 6);
    expect(data.xs[12]).toBeCloseTo(0.299, 6);
    expect(data.users).toBeNull();
    const rgb = loadImageFolder({ path: dir, channels: 3 });
    expect(rgb.shape).toEqual([2, 3, 3]);
    expect([...rgb.xs.subarray(36, 39)]).toEqual([1, 0, 0]);
  });

  it('gives one device per user with the <user>/<class>/*.png layout', () => {
    const dir = join(root, 'by-user');
    for (const [user, cls] of [
      ['u2', 'a'],
      ['u1', 'a'],
      ['u1', 'b'],
    ] as const) {
      mkdirSync(join(dir, user, cls), { recursive: true });
      writeRgb(join(dir, user, cls, 'x.png'), 2, 2, () => [10, 10, 10]);
    }
    const data = loadImageFolder({ path: dir, layout: 'user-class' });
    expect(data.users).toEqual({ ids: ['u1', 'u2'], indices: [[0, 1], [2]] });
    expect([...data.ys]).toEqual([0, 1, 0]);
  });

  it('refuses images of different sizes unless asked to resample', () => {
    const dir = join(root, 'sizes');
    mkdirSync(join(dir, 'k'), { recursive: true });
    writeRgb(join(dir, 'k', '1.png'), 4, 4, () => [0, 0, 0]);
    writeRgb(join(dir, 'k', '2.png'), 2, 2, () => [255, 255, 255]);
    expect(() => loadImageFolder({ path: dir })).toThrow(/2\.png is 2x2, the first image 4x4; set size/);
    const data = loadImageFolder({ path: dir, size: [4, 4] });
    expect(data.shape).toEqual([4, 4, 1]);
    expect(data.xs[16]).toBeCloseTo(1, 5);
  });

  it('resamples bilinearly with pixel centres aligned', () => {
    // A 1x2 ramp [0, 1] upsampled to 1x4: centres at -0.25, 0.25, 0.75, 1.25 of the source.
    const out = resizeBilinear(new Float32Array([0, 1]), { height: 1, width: 2 }, { height: 1, width: 4 }, 1);
    expect([...out]).toEqual([0, 0.25, 0.75, 1]);
  });
});
