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
    expect(bytes.length).toBe(8 + 4 * 4 + 10 * (4 + 24 + 16 + 16));
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

  it('mixes replayed examples at the requested ratio', () => {
    const past = { xs: new Float32Array(60).fill(-1), ys: new Int32Array(20).fill(2), featureShape: [3] };
    const mixed = mixReplay({ fresh: data, examples: past, ratio: 0.5, rng: createRng(3) });
    expect(mixed.ys.length).toBe(15);
    expect(Array.from(mixed.xs.subarray(0, 30))).toEqual(Array.from(data.xs));
    expect(Array.from(mixed.xs.subarray(30)).every((v) => v === -1)).toBe(true);
    expect(mixReplay({ fresh: data, examples: past, ratio: 0, rng: createRng(3) })).toBe(data);
  });
});
