import { afterAll, describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import { siblingModule } from '../../shared/ts-worker.js';
import { createSeededRng } from '../privacy/random.js';
import { ThreadClient } from '../thread-client.js';
import type { UpdateStats } from '../audit/reference.js';
import { shardStats } from './shard-stats.js';

// The hierarchical workers screen shards in a worker thread: the answers must be the in-process
// ones, errors must keep their codes, and a closed thread must refuse work instead of hanging.
describe('the shard stats thread', () => {
  const thread = new ThreadClient<Parameters<typeof shardStats>[0], UpdateStats[]>(
    siblingModule('stats-thread', import.meta.url),
    'shard stats',
  );
  afterAll(() => thread.close());

  it('answers with exactly the in-process stats', async () => {
    const rng = createSeededRng('stats-thread');
    const draw = () => Float32Array.from({ length: 500 }, () => rng.normal());
    const updates = Array.from({ length: 12 }, draw);
    // Two copies, so the nearest distance 0 is among the answers.
    updates.push(Float32Array.from(updates[0] ?? []));
    const input = { updates, reference: draw() };
    const expected = shardStats(input);
    expect(await thread.request(input)).toEqual(expected);
    expect(expected[0]?.nearestDistance).toBe(0);
  });

  it('answers the same when the vectors are moved to it instead of copied', async () => {
    const rng = createSeededRng('stats-thread-transfer');
    const draw = () => Float32Array.from({ length: 300 }, () => rng.normal());
    const input = { updates: Array.from({ length: 9 }, draw), reference: draw() };
    const expected = shardStats(input);
    const buffers = [...input.updates, input.reference].map((v) => v.buffer);
    // The reference's buffer listed twice: moved once.
    expect(await thread.request(input, [...buffers, input.reference.buffer])).toEqual(expected);
    expect(buffers.every((b) => b.byteLength === 0)).toBe(true);
  });

  it("rejects with the thread's error code, and stays usable", async () => {
    const bad = thread.request({ updates: [new Float32Array(3)], reference: new Float32Array(4) });
    await expect(bad).rejects.toSatisfy((e) => FlotillaError.is(e, 'SHAPE_MISMATCH'));
    const ok = await thread.request({ updates: [new Float32Array(4)], reference: new Float32Array(4) });
    expect(ok).toHaveLength(1);
  });

  it('refuses requests once closed', async () => {
    await thread.close();
    await expect(thread.request({ updates: [], reference: new Float32Array(0) })).rejects.toThrow(/closed/);
  });
});
