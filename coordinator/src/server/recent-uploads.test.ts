import { describe, expect, it } from 'vitest';
import { RecentUploads } from './recent-uploads.js';

/** The parts as an async body, one chunk per part (as an HTTP request yields them). */
async function* chunksOf(...parts: number[][]): AsyncGenerator<Uint8Array> {
  for (const part of parts) {
    await Promise.resolve();
    yield new Uint8Array(part);
  }
}

/** Reads `copy.source` to the end, as the blob store does, and returns what it yielded. */
async function drain(source: AsyncIterable<Uint8Array>): Promise<number[]> {
  const seen: number[] = [];
  for await (const chunk of source) seen.push(...chunk);
  return seen;
}

describe('RecentUploads', () => {
  it('passes the body through unchanged and keeps a copy once told its digest, not before', async () => {
    const recent = new RecentUploads(1000);
    const copy = recent.copy(chunksOf([1, 2], [3], [4, 5]), 5);
    expect(await drain(copy.source)).toEqual([1, 2, 3, 4, 5]);
    expect(recent.get('d')).toBeUndefined();
    copy.keep('d');
    expect([...(recent.get('d') ?? [])]).toEqual([1, 2, 3, 4, 5]);
    expect(recent.bytes).toBe(5);
    recent.forget('d');
    expect(recent.get('d')).toBeUndefined();
    expect(recent.bytes).toBe(0);
  });

  it('keeps nothing when the body ended short of its declared size', async () => {
    const recent = new RecentUploads(1000);
    const copy = recent.copy(chunksOf([1, 2]), 5);
    await drain(copy.source);
    copy.keep('short');
    expect(recent.get('short')).toBeUndefined();
  });

  it('keeps nothing when the body ran past its declared size, even if a part fitted exactly', async () => {
    const recent = new RecentUploads(1000);
    const copy = recent.copy(chunksOf([1, 2, 3], [4, 5], [6]), 5);
    expect(await drain(copy.source)).toEqual([1, 2, 3, 4, 5, 6]);
    copy.keep('long');
    expect(recent.get('long')).toBeUndefined();
    expect(recent.bytes).toBe(0);
  });

  it('keeps bytes equal to the body, from a buffer of its own', async () => {
    const recent = new RecentUploads(1 << 20);
    const body = Array.from({ length: 3000 }, (_, i) => (i * 7) % 256);
    const copy = recent.copy(chunksOf(body.slice(0, 1000), body.slice(1000, 2999), body.slice(2999)), 3000);
    await drain(copy.source);
    copy.keep('whole');
    const kept = recent.get('whole');
    expect(kept && [...kept]).toEqual(body);
    expect(kept?.byteOffset).toBe(0);
    expect(kept?.buffer.byteLength).toBe(3000);
  });

  it('does not copy bodies without a size or larger than a quarter of the budget', async () => {
    const recent = new RecentUploads(100);
    for (const declared of [Number.NaN, 0, 26]) {
      const body = chunksOf(new Array<number>(26).fill(7));
      const copy = recent.copy(body, declared);
      expect(copy.source).toBe(body);
      await drain(copy.source);
      copy.keep(`d${declared}`);
    }
    expect(recent.bytes).toBe(0);
  });

  it('drops the oldest uploads first when over its budget', async () => {
    const recent = new RecentUploads(100);
    for (const name of ['a', 'b', 'c', 'd', 'e']) {
      const copy = recent.copy(chunksOf(new Array<number>(25).fill(1)), 25);
      await drain(copy.source);
      copy.keep(name);
    }
    expect(recent.bytes).toBe(100);
    expect(recent.get('a')).toBeUndefined();
    for (const name of ['b', 'c', 'd', 'e']) expect(recent.get(name)?.length).toBe(25);
  });

  it('replaces a digest kept twice instead of counting it twice', async () => {
    const recent = new RecentUploads(100);
    for (let i = 0; i < 2; i++) {
      const copy = recent.copy(chunksOf([9, 9, 9]), 3);
      await drain(copy.source);
      copy.keep('same');
    }
    expect(recent.bytes).toBe(3);
  });
});
