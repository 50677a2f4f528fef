import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeFloat32Tensors, sha256Hex } from '@flotilla/protocol';
import { LocalDirBlobStore } from '../../shared/blob-store/index.js';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import { createSeededRng } from '../privacy/random.js';
import { reduceSortedColumns, sortedMedian } from '../strategies/coordinate-wise.js';
import { flattenTensors } from '../strategies/flatten.js';
import type { AggregateUpdateRef } from '../../shared/queues.js';
import { loadUpdates } from '../job/load-updates.js';
import { processShardStats, processShardSum } from './shard-jobs.js';
import { encodeShardSum, sumShard } from './shard-sum.js';
import { medianDelta, shardStats } from './shard-stats.js';

// Two LoRA modules; the A factors are frozen (FFA-LoRA): devices do not send them, their delta is
// zero, and they sit between trained tensors in the flattened order.
const SHAPES: Record<string, number[]> = {
  'm1.lora_A.weight': [2, 5],
  'm1.lora_B.weight': [6, 2],
  'm2.lora_A.weight': [2, 4],
  'm2.lora_B.weight': [3, 2],
};
const FROZEN = ['m1.lora_A.weight', 'm2.lora_A.weight'];

function randomDelta(rng: ReturnType<typeof createSeededRng>): TensorMap {
  return new Map(
    Object.entries(SHAPES).map(([name, shape]) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const values = FROZEN.includes(name)
        ? new Float32Array(size)
        : Float32Array.from({ length: size }, () => rng.normal());
      return [name, { shape, values }];
    }),
  );
}

const withoutFrozen = (delta: TensorMap): TensorMap =>
  new Map([...delta].filter(([name]) => !FROZEN.includes(name)));

describe('the shard screen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-shard-stats-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('skips the frozen tensors and answers bit for bit as over the whole adapter', async () => {
    const blobs = new LocalDirBlobStore({ dir });
    const rng = createSeededRng('shard-stats-frozen');
    const deltas = Array.from({ length: 11 }, () => randomDelta(rng));
    // A copy, so that a nearest distance of 0 is among the answers.
    const copied = deltas[3];
    if (copied) deltas.push(new Map(copied));
    const refs: AggregateUpdateRef[] = [];
    for (const [i, delta] of deltas.entries()) {
      const bytes = encodeFloat32Tensors(withoutFrozen(delta));
      const blobDigest = sha256Hex(bytes);
      await blobs.put(blobDigest, bytes);
      refs.push({
        updateId: `u${i}`,
        devicePseudonym: `d${i}`,
        blobDigest,
        numExamples: 8,
        norm: 1,
        clipped: false,
      });
    }
    const reference = randomDelta(rng);
    const referenceBytes = encodeFloat32Tensors(reference);
    const referenceDigest = sha256Hex(referenceBytes);
    await blobs.put(referenceDigest, referenceBytes);

    const result = await processShardStats(
      {
        roundId: 'task:1',
        shardIndex: 0,
        expectedShapes: SHAPES,
        frozen: FROZEN,
        updates: refs,
        referenceDigest,
      },
      blobs,
    );
    // The independent path: every tensor, frozen zeros included, flattened as the audit would.
    const expected = shardStats({
      updates: deltas.map((d) => flattenTensors(d).values),
      reference: flattenTensors(reference).values,
    });
    expect(
      result.updates.map(({ norm, cosine, othersCosine, nearestDistance }) => ({
        norm,
        cosine,
        othersCosine,
        nearestDistance,
      })),
    ).toEqual(expected);
    expect(result.updates[3]?.nearestDistance).toBe(0);
  });

  it('sums a shard and excludes its bad blobs exactly as loading them on the event loop did', async () => {
    const blobs = new LocalDirBlobStore({ dir });
    const rng = createSeededRng('shard-sum-pass');
    const refs: AggregateUpdateRef[] = [];
    const store = async (bytes: Uint8Array, i: number, put = true) => {
      const blobDigest = sha256Hex(bytes);
      if (put) await blobs.put(blobDigest, bytes);
      refs.push({
        updateId: `s${i}`,
        devicePseudonym: `d${i}`,
        blobDigest,
        numExamples: 3 + i,
        norm: 1,
        clipped: false,
      });
    };
    for (let i = 0; i < 9; i++) await store(encodeFloat32Tensors(withoutFrozen(randomDelta(rng))), i);
    // Bad ones among them: not in the store, a NaN, a frozen tensor that changed, a wrong shape.
    await store(encodeFloat32Tensors(withoutFrozen(randomDelta(rng))), 9, false);
    const nan = withoutFrozen(randomDelta(rng));
    nan.get('m2.lora_B.weight')?.values.fill(Number.NaN, 2, 3);
    await store(encodeFloat32Tensors(nan), 10);
    const moved = randomDelta(rng);
    moved.get('m1.lora_A.weight')?.values.fill(0.5);
    await store(encodeFloat32Tensors(moved), 11);
    await store(
      encodeFloat32Tensors(new Map([['m1.lora_B.weight', { shape: [12], values: new Float32Array(12) }]])),
      12,
    );
    refs.reverse();
    const job = {
      roundId: 'task:1',
      shardIndex: 2,
      weighting: 'examples',
      expectedShapes: SHAPES,
      frozen: FROZEN,
      updates: refs,
    };

    const result = await processShardSum(job, blobs);
    // The path before: loadUpdates on this thread, then the sum and the median of what loaded.
    const expected = new Map(Object.entries(SHAPES).map(([name, shape]) => [name, { shape }]));
    const { loaded, excluded } = await loadUpdates({ refs, blobs, expected, frozen: new Set(FROZEN) });
    expect(result.excluded).toEqual(
      excluded.map((e) => ({ updateId: e.ref.updateId, code: e.code, reason: e.reason })),
    );
    expect(result.excluded.map((e) => e.code)).toEqual([
      'SHAPE_MISMATCH',
      'BAD_REQUEST',
      'NON_FINITE',
      'BLOB_MISSING',
    ]);
    const metadata = { 'flotilla.round': 'task:1', 'flotilla.shard': '2' };
    const sum = sumShard(loaded.map((u) => ({ delta: u.delta, weight: u.ref.numExamples })));
    expect(result.sumDigest).toBe(sha256Hex(encodeShardSum(sum, metadata)));
    const median = medianDelta(loaded.map((u) => u.delta));
    expect(result.medianDigest).toBe(sha256Hex(encodeFloat32Tensors(median, metadata, 'F32')));
    expect([result.count, result.totalWeight]).toEqual([9, sum.totalWeight]);
  });

  it('takes the coordinate-wise median by the definition, known zeros included', () => {
    const rng = createSeededRng('shard-median');
    for (const count of [1, 6, 7]) {
      const deltas = Array.from({ length: count }, () => randomDelta(rng));
      const median = medianDelta(deltas, { zeros: new Set(FROZEN) });
      expect(median).toEqual(medianDelta(deltas));
      for (const [name, shape] of Object.entries(SHAPES)) {
        const columns = deltas.map((d) => d.get(name)?.values ?? new Float32Array(0));
        const length = shape.reduce((a, b) => a * b, 1);
        const definition = reduceSortedColumns(columns, length, sortedMedian, { kernel: 'scalar' });
        expect(median.get(name)).toEqual({ shape, values: definition });
      }
    }
  });
});
