import { afterAll, describe, expect, it } from 'vitest';
import { FlotillaError, encodeFloat32Tensors, sha256Hex } from '@flotilla/protocol';
import { siblingModule } from '../../shared/ts-worker.js';
import { createSeededRng } from '../privacy/random.js';
import { ThreadPool } from '../thread-client.js';
import {
  requestBuffers,
  shardMath,
  type ShardMathRequest,
  type ShardStatsRequest,
  type ShardSumAnswer,
  type ShardSumRequest,
} from './shard-math.js';

// The hierarchical workers run both shard passes' math in worker threads: the answers must be the
// in-process ones (vectors moved, not copied), errors must keep their codes, and a closed pool
// must refuse work instead of hanging.
describe('the shard math threads', () => {
  const pool = new ThreadPool<ShardMathRequest, ShardSumAnswer | number[]>(
    siblingModule('stats-thread', import.meta.url),
    'shard math',
    2,
  );
  afterAll(() => pool.close());
  const rng = createSeededRng('stats-thread');
  const draw = (length: number) => Float32Array.from({ length }, () => rng.normal());

  const stored = (values: Float32Array) => {
    const bytes = encodeFloat32Tensors(new Map([['b', { shape: [5, 3], values }]]));
    return { blobDigest: sha256Hex(bytes), bytes };
  };

  function statsRequest(): ShardStatsRequest {
    return {
      kind: 'stats',
      blobs: Array.from({ length: 12 }, (_, i) => ({ updateId: `u${i}`, ...stored(draw(15)) })),
      reference: draw(15),
      frozen: ['a'],
    };
  }

  it('takes the cosines to the reference exactly as in process, on two threads at once, bytes moved', async () => {
    const requests = [statsRequest(), statsRequest()];
    const copy = (r: ShardStatsRequest): ShardStatsRequest => ({
      ...r,
      blobs: r.blobs.map((b) => ({ ...b, bytes: b.bytes.slice() })),
      reference: r.reference.slice(),
    });
    const expected = requests.map((r) => shardMath(copy(r)));
    const buffers = requests.flatMap(requestBuffers);
    const answers = await Promise.all(requests.map((r) => pool.request(r, requestBuffers(r))));
    expect(answers).toEqual(expected);
    expect(expected[0]).toHaveLength(12);
    expect(buffers.every((b) => b.byteLength === 0)).toBe(true);
  });

  it('checks, sums and takes the median of a shard exactly as in process', async () => {
    const blob = (values: Float32Array) => ({ ...stored(values), weight: 1 + rng.normal() ** 2 });
    const blobs = Array.from({ length: 7 }, () => blob(draw(15)));
    // Refused by the checks, with their reasons: a NaN, and bytes that do not match their digest.
    blobs.push(blob(Float32Array.from({ length: 15 }, (_, i) => (i === 4 ? Number.NaN : i))));
    blobs.push({ ...blob(draw(15)), blobDigest: sha256Hex(new Uint8Array(1)) });
    const request: ShardSumRequest = {
      kind: 'sum',
      blobs,
      expectedShapes: { a: [4, 5], b: [5, 3] },
      frozen: ['a'],
      withMedian: true,
      withPeers: true,
    };
    const expected = shardMath({ ...request, blobs: blobs.map((b) => ({ ...b, bytes: b.bytes.slice() })) });
    expect(expected.refused.map((r) => [r.index, r.code])).toEqual([
      [7, 'NON_FINITE'],
      [8, 'DIGEST_MISMATCH'],
    ]);
    expect(expected.median?.get('a')?.values).toEqual(new Float32Array(20));
    expect(expected.peers).toHaveLength(7);
    const buffers = requestBuffers(request);
    expect(await pool.request(request, buffers)).toEqual(expected);
    expect(buffers.every((b) => b.byteLength === 0)).toBe(true);
  });

  it("rejects with the thread's error code, and stays usable", async () => {
    const bad = pool.request({ ...statsRequest(), reference: new Float32Array(4) });
    await expect(bad).rejects.toSatisfy((e) => FlotillaError.is(e, 'SHAPE_MISMATCH'));
    const ok = await pool.request(statsRequest());
    expect(ok).toHaveLength(12);
    // The second pass compares each blob with its digest in the thread.
    const changed = statsRequest();
    const third = changed.blobs[2];
    if (third) third.bytes = stored(draw(15)).bytes;
    await expect(pool.request(changed)).rejects.toSatisfy(
      (e) =>
        FlotillaError.is(e, 'DIGEST_MISMATCH') && /update u2 changed after it was summed/.test(String(e)),
    );
  });

  it('refuses requests once closed', async () => {
    await pool.close();
    await expect(
      pool.request({ kind: 'stats', blobs: [], reference: new Float32Array(0), frozen: [] }),
    ).rejects.toThrow(/closed/);
  });
});
