import { describe, expect, it } from 'vitest';
import { RecentUploads } from './recent-uploads.js';

/** The parts as an async body, one chunk per part (as an HTTP request yields them). */
async function* chunksOf(...parts: number[][]): AsyncGenerator<Uint8Array> {
  for (const part of parts) {
    await Promise.resolve();
    yield new Uint8Array(part);
  }
}

/** The bytes kept under `digest` (borrowed and given back at once), or undefined. */
function keptBytes(recent: RecentUploads, digest: string): number[] | undefined {
  const lent = recent.borrow(digest);
  if (!lent) return undefined;
  const bytes = [...lent.bytes];
  lent.release();
  return bytes;
}

/** Uploads `body` (one chunk) and keeps it under `digest`. */
async function upload(recent: RecentUploads, digest: string, body: number[]): Promise<void> {
  const copy = recent.copy(chunksOf(body), body.length);
  await drain(copy.source);
  copy.keep(digest);
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
    expect(keptBytes(recent, 'd')).toBeUndefined();
    copy.keep('d');
    expect(keptBytes(recent, 'd')).toEqual([1, 2, 3, 4, 5]);
    expect(recent.bytes).toBe(5);
    recent.forget('d');
    expect(keptBytes(recent, 'd')).toBeUndefined();
    expect(recent.bytes).toBe(0);
  });

  it('keeps nothing when the body ended short of its declared size', async () => {
    const recent = new RecentUploads(1000);
    const copy = recent.copy(chunksOf([1, 2]), 5);
    await drain(copy.source);
    copy.keep('short');
    expect(keptBytes(recent, 'short')).toBeUndefined();
  });

  it('keeps nothing when the body ran past its declared size, even if a part fitted exactly', async () => {
    const recent = new RecentUploads(1000);
    const copy = recent.copy(chunksOf([1, 2, 3], [4, 5], [6]), 5);
    expect(await drain(copy.source)).toEqual([1, 2, 3, 4, 5, 6]);
    copy.keep('long');
    expect(keptBytes(recent, 'long')).toBeUndefined();
    expect(recent.bytes).toBe(0);
  });

  it('keeps bytes equal to the body, from a buffer of its own', async () => {
    const recent = new RecentUploads(1 << 20);
    const body = Array.from({ length: 3000 }, (_, i) => (i * 7) % 256);
    const copy = recent.copy(chunksOf(body.slice(0, 1000), body.slice(1000, 2999), body.slice(2999)), 3000);
    await drain(copy.source);
    copy.keep('whole');
    const kept = recent.borrow('whole');
    expect(kept && [...kept.bytes]).toEqual(body);
    expect(kept?.bytes.byteOffset).toBe(0);
    expect(kept?.bytes.buffer.byteLength).toBe(3000);
    kept?.release();
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
    expect(keptBytes(recent, 'a')).toBeUndefined();
    for (const name of ['b', 'c', 'd', 'e']) expect(keptBytes(recent, name)?.length).toBe(25);
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

  it('reuses the buffer of an accepted upload for the next upload of its size', async () => {
    const recent = new RecentUploads(1000);
    await upload(recent, 'first', [1, 2, 3, 4]);
    const first = recent.borrow('first');
    const buffer = first?.bytes.buffer;
    first?.release();
    recent.forget('first');
    expect(recent.pooledBytes).toBe(4);
    await upload(recent, 'second', [5, 6, 7, 8]);
    const second = recent.borrow('second');
    expect(second?.bytes.buffer).toBe(buffer);
    expect(second && [...second.bytes]).toEqual([5, 6, 7, 8]);
    second?.release();
    expect(recent.pooledBytes).toBe(0);
  });

  it('never hands out a buffer a reader still holds: it is reused only after the last release', async () => {
    const recent = new RecentUploads(1000);
    await upload(recent, 'same', [1, 1, 1]);
    // Two submissions naming the same bytes (two devices that uploaded identical deltas).
    const a = recent.borrow('same');
    const b = recent.borrow('same');
    recent.forget('same');
    a?.release();
    a?.release(); // a second release of one loan counts once
    await upload(recent, 'other', [2, 2, 2]);
    expect(b && [...b.bytes]).toEqual([1, 1, 1]);
    expect(recent.pooledBytes).toBe(0);
    b?.release();
    expect(recent.pooledBytes).toBe(3);
    await upload(recent, 'third', [3, 3, 3]);
    expect(b?.bytes.buffer).toBe(recent.borrow('third')?.bytes.buffer);
  });

  it('keeps bytes pushed out by newer uploads intact for a reader that borrowed them', async () => {
    const recent = new RecentUploads(8);
    await upload(recent, 'old', [9, 9]);
    const lent = recent.borrow('old');
    for (const name of ['n1', 'n2', 'n3', 'n4']) await upload(recent, name, [7, 7]);
    expect(keptBytes(recent, 'old')).toBeUndefined();
    expect(lent && [...lent.bytes]).toEqual([9, 9]);
    lent?.release();
  });

  it('pools at most a quarter of its budget of unused buffers', async () => {
    const recent = new RecentUploads(100);
    for (const name of ['a', 'b', 'c', 'd']) await upload(recent, name, new Array<number>(10).fill(1));
    for (const name of ['a', 'b', 'c', 'd']) recent.forget(name);
    expect(recent.pooledBytes).toBe(20);
  });

  it('does not give back the buffer of an upload it did not keep; the next upload holds only its own bytes', async () => {
    const recent = new RecentUploads(1000);
    await upload(recent, 'kept', [4, 4, 4]);
    recent.forget('kept');
    // A new upload takes the pooled buffer; it ends short and is not kept.
    const short = recent.copy(chunksOf([5]), 3);
    await drain(short.source);
    short.keep('short');
    expect(keptBytes(recent, 'short')).toBeUndefined();
    expect(recent.pooledBytes).toBe(0);
    // The next upload of that size gets a buffer of its own, filled only with its own bytes.
    await upload(recent, 'next', [6, 6, 6]);
    expect(keptBytes(recent, 'next')).toEqual([6, 6, 6]);
  });
});
