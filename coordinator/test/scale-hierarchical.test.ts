import { FlowProducer, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeFloat32Tensors, encodeFloat32Tensors, sha256Hex } from '@flotilla/protocol';
import { openBlobStore } from '../src/shared/blob-store/index.js';
import {
  COMBINE_QUEUE,
  CombineResultSchema,
  SHARD_SUM_QUEUE,
  addHierarchicalFedAvgFlow,
  planShards,
  shouldAggregateHierarchically,
} from '../src/shared/hierarchical-flow.js';
import type { AggregateUpdateRef } from '../src/shared/queues.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import {
  startHierarchicalWorkers,
  type HierarchicalWorkers,
} from '../src/worker/hierarchical/hierarchical-workers.js';
import { aggregateFedAvg } from '../src/worker/strategies/fedavg.js';
import { flattenTensors } from '../src/worker/strategies/flatten.js';
import { seededRandom } from '../src/worker/strategies/test-random.js';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';

const SHAPES: Record<string, number[]> = {
  'base_model.model.dense.lora_A.weight': [4, 16],
  'base_model.model.dense.lora_B.weight': [8, 4],
  'base_model.model.dense.bias': [8],
};

describe('hierarchical FedAvg over a BullMQ flow', () => {
  const connection = redisOptionsFromUrl(testRedisUrl());
  const redis = new Redis(connection);
  const prefix = uniquePrefix('hier');
  const blobs = openBlobStore({ kind: 'redis', redis, prefix });
  const workers: HierarchicalWorkers[] = [];
  const flows = new FlowProducer({ connection, prefix });
  const events = new QueueEvents(COMBINE_QUEUE, { connection, prefix });

  afterAll(async () => {
    for (const w of workers) await w.close();
    await flows.close();
    await events.close();
    redis.disconnect();
  });

  /** `count` random deltas (seeded) with weights 1..50, stored by content address. */
  async function makeUpdates(count: number, seed: number) {
    const random = seededRandom(seed);
    const refs: AggregateUpdateRef[] = [];
    const flat: Array<{ values: Float32Array; weight: number }> = [];
    for (let k = 0; k < count; k++) {
      const tensors = new Map(
        Object.entries(SHAPES).map(([name, shape]) => [
          name,
          {
            shape,
            values: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1),
          },
        ]),
      );
      const bytes = encodeFloat32Tensors(tensors);
      const digest = sha256Hex(bytes);
      await blobs.put(digest, bytes);
      const weight = 1 + Math.floor(random() * 50);
      refs.push({
        updateId: `u${k}`,
        devicePseudonym: `dev_${k}`,
        blobDigest: digest,
        numExamples: weight,
        norm: 1,
        clipped: false,
      });
      flat.push({ values: flattenTensors(tensors).values, weight });
    }
    return { refs, flat };
  }

  it('gives the single-stage FedAvg result (float tolerance) from shard sums on two workers', async () => {
    workers.push(
      await startHierarchicalWorkers({ connection, prefix, blobs }),
      await startHierarchicalWorkers({ connection, prefix, blobs }),
    );
    const { refs, flat } = await makeUpdates(230, 7);
    // Default threshold 200: this round goes hierarchical under FedAvg, never under Krum.
    expect(
      shouldAggregateHierarchically({ strategy: { name: 'fedavg', loraRule: 'fedit' }, updateCount: 230 }),
    ).toBe(true);
    expect(
      shouldAggregateHierarchically({ strategy: { name: 'krum', loraRule: 'fedit' }, updateCount: 230 }),
    ).toBe(false);
    expect(
      shouldAggregateHierarchically({ strategy: { name: 'fedavg', loraRule: 'fedit' }, updateCount: 199 }),
    ).toBe(false);
    // One update's blob is missing: the shard excludes it with a reason, the others still count.
    const missing: AggregateUpdateRef = {
      updateId: 'lost',
      devicePseudonym: 'dev_lost',
      blobDigest: 'f'.repeat(64),
      numExamples: 5,
      norm: 1,
      clipped: false,
    };
    const job = await addHierarchicalFedAvgFlow(flows, {
      roundId: 'hier-task:1',
      updates: [...refs, missing],
      expectedShapes: SHAPES,
      weighting: 'examples',
      shardSize: 25,
    });
    expect(planShards([...refs, missing], 25)).toHaveLength(10);
    const result = CombineResultSchema.parse(await job.waitUntilFinished(events, 60_000));
    expect(result.count).toBe(230);
    expect(result.totalWeight).toBe(flat.reduce((s, u) => s + u.weight, 0));
    expect(result.excluded).toEqual([expect.objectContaining({ updateId: 'lost', code: 'BLOB_MISSING' })]);

    const meanBytes = await blobs.get(result.meanDigest);
    expect(meanBytes && sha256Hex(meanBytes)).toBe(result.meanDigest);
    const hierarchical = flattenTensors(decodeFloat32Tensors(meanBytes ?? new Uint8Array()).tensors).values;
    const single = aggregateFedAvg(flat).values;
    // Independent reference: the weighted mean in float64, written out here.
    const total = flat.reduce((s, u) => s + u.weight, 0);
    let worst = 0;
    for (let i = 0; i < single.length; i++) {
      let acc = 0;
      for (const u of flat) acc += u.weight * (u.values[i] ?? 0);
      const reference = acc / total;
      expect(Math.abs((single[i] ?? 0) - reference)).toBeLessThan(1e-6);
      worst = Math.max(worst, Math.abs((hierarchical[i] ?? 0) - (single[i] ?? 0)));
    }
    // Both round a float64 sum once to f32: they agree to f32 rounding of |mean| < 1.
    expect(worst).toBeLessThanOrEqual(2 ** -24);

    // Ten children ran on the shard queue; adding the same round again adds nothing.
    const shardQueue = new Queue(SHARD_SUM_QUEUE, { connection, prefix });
    expect(await shardQueue.getCompletedCount()).toBe(10);
    await addHierarchicalFedAvgFlow(flows, {
      roundId: 'hier-task:1',
      updates: refs,
      expectedShapes: SHAPES,
      weighting: 'examples',
      shardSize: 25,
    });
    expect(await shardQueue.getJobCounts('waiting', 'active', 'completed')).toMatchObject({ completed: 10 });
    await shardQueue.close();
  });

  it('fails the round for good when no shard holds a usable update', async () => {
    const bad: AggregateUpdateRef = {
      updateId: 'x',
      devicePseudonym: 'dev_x',
      blobDigest: 'e'.repeat(64),
      numExamples: 1,
      norm: 1,
      clipped: false,
    };
    const job = await addHierarchicalFedAvgFlow(flows, {
      roundId: 'hier-task:2',
      updates: [bad],
      expectedShapes: SHAPES,
      weighting: 'uniform',
    });
    await expect(job.waitUntilFinished(events, 30_000)).rejects.toThrow(/no usable update/);
  });
});
