import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { createRng } from '../model/seeded-rng.js';
import { mixReplay } from './mix-replay.js';
import { ReplayBuffer } from './replay-buffer.js';

const key = new Uint8Array(32).fill(7);
const data = {
  xs: Float32Array.from({ length: 30 }, (_, i) => i / 10),
  ys: Int32Array.from({ length: 10 }, (_, i) => i % 3),
  featureShape: [3],
};

describe('replay buffer', () => {
  it('returns exactly the stored examples and never keeps plaintext', () => {
    const buffer = new ReplayBuffer({ key, featureShape: [3] });
    buffer.add(data);
    expect(buffer.length).toBe(10);
    const sample = buffer.sample(10, createRng(1));
    // Every sampled row must be one of the stored (label, features) rows, each once.
    const rows = Array.from({ length: 10 }, (_, i) =>
      JSON.stringify([data.ys[i], ...data.xs.subarray(i * 3, i * 3 + 3)]),
    );
    const got = Array.from({ length: 10 }, (_, i) =>
      JSON.stringify([sample.ys[i], ...sample.xs.subarray(i * 3, i * 3 + 3)]),
    );
    expect(got.sort()).toEqual(rows.sort());
    const bytes = buffer.serialize();
    const plain = new Uint8Array(data.xs.buffer.slice(12, 24));
    const text = Buffer.from(bytes).toString('hex');
    expect(text.includes(Buffer.from(plain).toString('hex'))).toBe(false);
    // Magic, header, 10 × (length, nonce, 12 plaintext bytes + 16 tag), seal (nonce, SHA-512 + tag).
    expect(bytes.length).toBe(8 + 4 * 4 + 10 * (4 + 24 + 16 + 16) + (24 + 64 + 16));
  });

  it('saves and loads sealed records, and refuses a tampered file or a wrong key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-replay-'));
    try {
      const path = join(dir, 'replay.bin');
      const buffer = new ReplayBuffer({ key, featureShape: [3], capacity: 6 });
      buffer.add(data);
      expect(buffer.length).toBe(6);
      await buffer.saveTo(path);
      const loaded = new ReplayBuffer({ key, featureShape: [3] });
      await loaded.loadFrom(path);
      expect(loaded.sample(6, createRng(2))).toEqual(buffer.sample(6, createRng(2)));

      const bytes = new Uint8Array(await readFile(path));
      bytes[bytes.length - 5] = (bytes[bytes.length - 5] ?? 0) ^ 1;
      await writeFile(path, bytes);
      await expect(new ReplayBuffer({ key, featureShape: [3] }).loadFrom(path)).rejects.toMatchObject({
        code: 'CORRUPT_FILE',
      });
      await buffer.saveTo(path);
      const wrongKey = new ReplayBuffer({ key: nacl.randomBytes(32), featureShape: [3] });
      await expect(wrongKey.loadFrom(path)).rejects.toMatchObject({ code: 'CORRUPT_FILE' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a file whose sealed records were duplicated, dropped or reordered', () => {
    const buffer = new ReplayBuffer({ key, featureShape: [3] });
    buffer.add(data);
    const bytes = buffer.serialize();
    // The file as an attacker without the key can rewrite it: every sealed record is left intact,
    // only which records appear, how often and in what order changes (the count field follows).
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const countAt = 8 + 4 + 4 + 4;
    const count = view.getUint32(countAt, true);
    const recordLength = 4 + 24 + (3 + 1) * 4 + 16;
    const recordsEnd = countAt + 4 + count * recordLength;
    const record = (i: number) =>
      bytes.subarray(countAt + 4 + i * recordLength, countAt + 4 + (i + 1) * recordLength);
    const rewrite = (order: number[]): Uint8Array => {
      const header = Uint8Array.from(bytes.subarray(0, countAt + 4));
      new DataView(header.buffer).setUint32(countAt, order.length, true);
      const tail = bytes.subarray(recordsEnd);
      return Buffer.concat([header, ...order.map(record), tail]);
    };
    const load = (file: Uint8Array) => () => new ReplayBuffer({ key, featureShape: [3] }).deserialize(file);
    expect(load(rewrite([...Array(10).keys()]))).not.toThrow();
    expect(load(rewrite(Array.from({ length: 50 }, () => 3)))).toThrow(
      expect.objectContaining({ code: 'CORRUPT_FILE' }),
    );
    expect(load(rewrite([0, 1, 2, 3, 4]))).toThrow(expect.objectContaining({ code: 'CORRUPT_FILE' }));
    expect(load(rewrite([1, 0, 2, 3, 4, 5, 6, 7, 8, 9]))).toThrow(
      expect.objectContaining({ code: 'CORRUPT_FILE' }),
    );
    // Records spliced in from another file sealed with the same key.
    const other = new ReplayBuffer({ key, featureShape: [3] });
    other.add(data);
    const otherBytes = other.serialize();
    const spliced = Uint8Array.from(bytes);
    spliced.set(otherBytes.subarray(countAt + 4, countAt + 4 + recordLength), countAt + 4);
    expect(load(spliced)).toThrow(expect.objectContaining({ code: 'CORRUPT_FILE' }));
    // A version 1 file (records not bound) is refused with the reason.
    const v1 = Uint8Array.from(bytes.subarray(0, recordsEnd));
    v1[6] = 1;
    expect(load(v1)).toThrow(/version 1 file/);
  });

  it('mixes replayed examples at the requested ratio', () => {
    const past = { xs: new Float32Array(60).fill(-1), ys: new Int32Array(20).fill(2), featureShape: [3] };
    const mixed = mixReplay({ fresh: data, examples: past, ratio: 0.5, rng: createRng(3) });
    expect(mixed.ys.length).toBe(15);
    expect(Array.from(mixed.xs.subarray(0, 30))).toEqual(Array.from(data.xs));
    expect(Array.from(mixed.xs.subarray(30)).every((v) => v === -1)).toBe(true);
    expect(mixReplay({ fresh: data, examples: past, ratio: 0, rng: createRng(3) })).toBe(data);
  });
});
