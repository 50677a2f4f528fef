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
import { processShardStats } from './shard-jobs.js';
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
    const refs = [];
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
