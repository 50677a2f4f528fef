import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readNpy } from './npy.js';
import { loadNpyDataset } from './npy-dataset.js';

const hex = (text: string) => new Uint8Array(Buffer.from(text, 'hex'));

/**
 * An NPY file laid out by the format's rules (numpy.lib.format): magic, version, little-endian
 * header length (2 bytes in 1.0, 4 in 2.0/3.0), the dict literal padded with spaces and ended by
 * '\n' so that the data starts at a multiple of 64, then the data.
 */
function npyBytes(version: 1 | 2 | 3, header: string, data: Uint8Array): Uint8Array {
  const prefix = version === 1 ? 10 : 12;
  const padded = header.padEnd(Math.ceil((prefix + header.length + 1) / 64) * 64 - prefix - 1, ' ') + '\n';
  const out = new Uint8Array(prefix + padded.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, padded.length, true);
  else view.setUint32(8, padded.length, true);
  out.set(new TextEncoder().encode(padded), prefix);
  out.set(data, prefix + padded.length);
  return out;
}

// These files are what NumPy 2.4 writes (np.save / numpy.lib.format.write_array with a forced
// version); each equals the bytes npyBytes lays out from the specification.
const NUMPY_F4_2x3 = // np.arange(6, dtype='<f4').reshape(2, 3)
  '934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c2033292c207d' +
  '20'.repeat(58) +
  '0a000000000000803f0000004000004040000080400000a040';
const NUMPY_BE_I2_FORTRAN = // np.asfortranarray([[1, 2, 3], [4, 5, 6]], dtype='>i2')
  '934e554d5059010076007b276465736372273a20273e6932272c2027666f727472616e5f6f72646572273a20547275652c20277368617065273a2028322c2033292c207d' +
  '20'.repeat(59) +
  '0a000100040002000500030006';
const NUMPY_F8_V2 = // np.array([[1.5, -2], [0.25, 1e10]], dtype='<f8'), version (2, 0)
  '934e554d50590200740000007b276465736372273a20273c6638272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c2032292c207d' +
  '20'.repeat(56) +
  '0a000000000000f83f00000000000000c0000000000000d03f000000205fa00242';
const NUMPY_U1_V3 = // np.array([1, 255, 7], dtype='|u1'), version (3, 0)
  '934e554d50590300740000007b276465736372273a20277c7531272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d' +
  '20'.repeat(58) +
  '0a01ff07';

describe('readNpy', () => {
  it('reads version 1.0 float32 in C order', () => {
    const bytes = hex(NUMPY_F4_2x3);
    const data = new Uint8Array(new Float32Array([0, 1, 2, 3, 4, 5]).buffer);
    expect(bytes).toEqual(npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data));
    const array = readNpy(bytes);
    expect(array).toMatchObject({ descr: '<f4', shape: [2, 3], fortranOrder: false, version: 1 });
    expect([...array.values]).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('reads big-endian int16 stored in Fortran order back in C order', () => {
    const array = readNpy(hex(NUMPY_BE_I2_FORTRAN));
    expect(array.fortranOrder).toBe(true);
    expect(array.shape).toEqual([2, 3]);
    expect([...array.values]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reads versions 2.0 (4-byte header length) and 3.0 (UTF-8 header)', () => {
    const v2 = readNpy(hex(NUMPY_F8_V2));
    expect(v2.version).toBe(2);
    expect([...v2.values]).toEqual([1.5, -2, 0.25, 1e10]);
    const v3 = readNpy(hex(NUMPY_U1_V3));
    expect(v3.version).toBe(3);
    expect([...v3.values]).toEqual([1, 255, 7]);
  });

  it('reads bool, int64, float16 and 0-d arrays laid out from the specification', () => {
    const bool = npyBytes(
      1,
      "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
      new Uint8Array([1, 0, 1]),
    );
    expect([...readNpy(bool).values]).toEqual([1, 0, 1]);
    const int64 = new DataView(new ArrayBuffer(16));
    int64.setBigInt64(0, -1n, true);
    int64.setBigInt64(8, 2n ** 40n, true);
    const i8 = npyBytes(
      1,
      "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
      new Uint8Array(int64.buffer),
    );
    expect([...readNpy(i8).values]).toEqual([-1, 2 ** 40]);
    // binary16: 0x3c00 = 1, 0xc000 = -2, 0x3555 ≈ 0.33325.
    const half = npyBytes(
      1,
      "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }",
      new Uint8Array([0x00, 0x3c, 0x00, 0xc0, 0x55, 0x35]),
    );
    const halves = [...readNpy(half).values];
    expect(halves.slice(0, 2)).toEqual([1, -2]);
    expect(halves[2]).toBeCloseTo(0.33325, 5);
    const scalar = npyBytes(
      1,
      "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
      new Uint8Array(new Float32Array([3.5]).buffer),
    );
    expect(readNpy(scalar)).toMatchObject({ shape: [] });
    expect([...readNpy(scalar).values]).toEqual([3.5]);
  });

  it('refuses what it cannot read, with the reason', () => {
    expect(() => readNpy(new Uint8Array(20))).toThrow(/bad magic/);
    const text = npyBytes(1, "{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(12));
    expect(() => readNpy(text)).toThrow(/unsupported dtype '<U3'/);
    const short = npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", new Uint8Array(8));
    expect(() => readNpy(short)).toThrow(/needs 16/);
    const v9 = hex(NUMPY_F4_2x3);
    v9[6] = 9;
    expect(() => readNpy(v9)).toThrow(/version 9/);
  });
});

describe('loadNpyDataset', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-npy-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips features, labels and users written as .npy files', () => {
    const features = new Float32Array([0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]);
    writeFileSync(
      join(dir, 'x.npy'),
      npyBytes(
        1,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2), }",
        new Uint8Array(features.buffer),
      ),
    );
    const labels = new DataView(new ArrayBuffer(32));
    [2, 0, 1, 2].forEach((y, i) => labels.setBigInt64(i * 8, BigInt(y), true));
    writeFileSync(
      join(dir, 'y.npy'),
      npyBytes(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", new Uint8Array(labels.buffer)),
    );
    writeFileSync(
      join(dir, 'u.npy'),
      npyBytes(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }", new Uint8Array([7, 3, 7, 3])),
    );
    const data = loadNpyDataset({
      features: join(dir, 'x.npy'),
      labels: join(dir, 'y.npy'),
      users: join(dir, 'u.npy'),
    });
    expect(data.shape).toEqual([2]);
    expect([...data.xs]).toEqual([...features]);
    expect([...data.ys]).toEqual([2, 0, 1, 2]);
    expect(data.numClasses).toBe(3);
    expect(data.users).toEqual({
      ids: ['7', '3'],
      indices: [
        [0, 2],
        [1, 3],
      ],
    });
    writeFileSync(
      join(dir, 'y3.npy'),
      npyBytes(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", new Uint8Array([0, 1, 2])),
    );
    expect(() => loadNpyDataset({ features: join(dir, 'x.npy'), labels: join(dir, 'y3.npy') })).toThrow(
      /labels need shape \[4\]/,
    );
  });
});
