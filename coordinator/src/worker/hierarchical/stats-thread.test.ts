import { afterAll, describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import { siblingModule } from '../../shared/ts-worker.js';
import { createSeededRng } from '../privacy/random.js';
import { ThreadPool } from '../thread-client.js';
import type { UpdateStats } from '../audit/reference.js';
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
  const pool = new ThreadPool<ShardMathRequest, ShardSumAnswer | UpdateStats[]>(
    siblingModule('stats-thread', import.meta.url),
    'shard math',
    2,
  );
  afterAll(() => pool.close());
  const rng = createSeededRng('stats-thread');
  const draw = (length: number) => Float32Array.from({ length }, () => rng.normal());

  function statsRequest(): ShardStatsRequest {
    const updates = Array.from({ length: 12 }, () => draw(500));
    // Two copies, so the nearest distance 0 is among the answers.
    updates.push(Float32Array.from(updates[0] ?? []));
    return { kind: 'stats', updates, reference: draw(500) };
  }

  it('screens exactly as in process, on two threads at once, with the vectors moved', async () => {
    const requests = [statsRequest(), statsRequest()];
    const expected = requests.map((r) => shardMath(r));
    const buffers = requests.flatMap(requestBuffers);
    const answers = await Promise.all(requests.map((r) => pool.request(r, requestBuffers(r))));
    expect(answers).toEqual(expected);
    expect(expected[0]?.[0]?.nearestDistance).toBe(0);
    expect(buffers.every((b) => b.byteLength === 0)).toBe(true);
  });

  it('sums a shard and takes its median exactly as in process', async () => {
    const delta = (): TensorMap =>
      new Map([
        ['a', { shape: [4, 5], values: new Float32Array(20) }],
        ['b', { shape: [5, 3], values: draw(15) }],
      ]);
    const request: ShardSumRequest = {
      kind: 'sum',
      deltas: Array.from({ length: 7 }, delta),
      weights: [1, 2, 3, 4, 5, 6, 7.5],
      withMedian: true,
      zeros: ['a'],
    };
    const expected = shardMath(request);
    // The same tensor listed twice (a buffer moved once).
    const buffers = [
      ...requestBuffers(request),
      request.deltas[0]?.get('b')?.values.buffer ?? new ArrayBuffer(0),
    ];
    expect(await pool.request(request, buffers)).toEqual(expected);
    expect(expected.median?.get('a')?.values).toEqual(new Float32Array(20));
  });

  it("rejects with the thread's error code, and stays usable", async () => {
    const bad = pool.request({
      kind: 'stats',
      updates: [new Float32Array(3)],
      reference: new Float32Array(4),
    });
    await expect(bad).rejects.toSatisfy((e) => FlotillaError.is(e, 'SHAPE_MISMATCH'));
    const ok = await pool.request({
      kind: 'stats',
      updates: [new Float32Array(4)],
      reference: new Float32Array(4),
    });
    expect(ok).toHaveLength(1);
  });

  it('refuses requests once closed', async () => {
    await pool.close();
    await expect(
      pool.request({ kind: 'stats', updates: [], reference: new Float32Array(0) }),
    ).rejects.toThrow(/closed/);
  });
});
