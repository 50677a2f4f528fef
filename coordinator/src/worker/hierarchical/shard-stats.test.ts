import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FlotillaError, at, encodeFloat32Tensors, encodeInt8Delta, sha256Hex } from '@flotilla/protocol';
import { LocalDirBlobStore, ReadArenaPool } from '../../shared/blob-store/index.js';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import { createSeededRng } from '../privacy/random.js';
import { reduceSortedColumns, sortedMedian } from '../strategies/coordinate-wise.js';
import { flattenTensors } from '../strategies/flatten.js';
import type { AggregateUpdateRef } from '../../shared/queues.js';
import { loadUpdates } from '../job/load-updates.js';
import { processShardStats, processShardSum } from './shard-jobs.js';
import { inProcessShardMath, shardMath } from './shard-math.js';
import { encodeShardSum, sumShard } from './shard-sum.js';
import { updateStats } from '../audit/reference.js';
import { medianDelta } from './shard-stats.js';

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

/** The delta as an int8 file, each tensor scaled by its largest magnitude. */
function int8(delta: TensorMap): Uint8Array {
  return encodeInt8Delta(
    new Map(
      [...delta].map(([name, { shape, values }]) => {
        const scale = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / 127;
        const quantized = Int8Array.from(values, (v) => Math.round(v / scale));
        return [name, { shape, quantized, scale }];
      }),
    ),
  );
}

describe('the shard screen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-shard-stats-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('screens over both passes bit for bit as the single-stage audit, leaving frozen tensors out', async () => {
    const blobs = new LocalDirBlobStore({ dir });
    const rng = createSeededRng('shard-stats-frozen');
    const deltas = Array.from({ length: 12 }, () => randomDelta(rng));
    // A copy (stored as F32, as its original is), so that a nearest distance of 0 is among the answers.
    const copied = deltas[3];
    if (copied) deltas.push(new Map(copied));
    const refs: AggregateUpdateRef[] = [];
    for (const [i, delta] of deltas.entries()) {
      // Stored as F32, F16 and int8 in turn: the second pass reads each as the first decoded it.
      const trained = withoutFrozen(delta);
      const bytes =
        i % 3 === 0
          ? encodeFloat32Tensors(trained)
          : i % 3 === 1
            ? encodeFloat32Tensors(trained, {}, 'F16')
            : int8(trained);
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
    const job = { roundId: 'task:1', shardIndex: 0, expectedShapes: SHAPES, frozen: FROZEN, updates: refs };

    const summed = await processShardSum({ ...job, weighting: 'examples', withPeers: true }, blobs);
    const second = await processShardStats({ ...job, referenceDigest }, blobs);
    const peers = new Map((summed.peers ?? []).map((p) => [p.updateId, p]));
    const both = second.updates.map(({ updateId, cosine }) => {
      const { norm, othersCosine, nearestDistance } = peers.get(updateId) ?? {};
      return { norm, cosine, othersCosine, nearestDistance };
    });
    // The independent path: the single-stage audit over every tensor, frozen zeros included, of
    // the deltas as the store decodes them.
    const { loaded } = await loadUpdates({
      refs,
      blobs,
      expected: new Map(Object.entries(SHAPES).map(([name, shape]) => [name, { shape }])),
      frozen: new Set(FROZEN),
    });
    const expected = updateStats(
      loaded.map((u) => [flattenTensors(u.delta).values]),
      [flattenTensors(reference).values],
    );
    expect(both).toEqual(expected);
    expect(both[3]?.nearestDistance).toBe(0);
    // The median the screen read off its sorted columns: the definition's, frozen zeros included.
    const median = medianDelta(loaded.map((u) => u.delta));
    const metadata = { 'flotilla.round': 'task:1', 'flotilla.shard': '0' };
    expect(summed.medianDigest).toBe(sha256Hex(encodeFloat32Tensors(median, metadata, 'F32')));
    expect(new Set(expected.map((e) => e.cosine)).size).toBeGreaterThan(10);

    // Read into arenas reused job after job (the first sizes them): the same answers.
    const arenas = new ReadArenaPool({ keep: 1 });
    for (let run = 0; run < 2; run++) {
      expect(
        await processShardSum(
          { ...job, weighting: 'examples', withPeers: true },
          blobs,
          inProcessShardMath,
          arenas,
        ),
      ).toEqual(summed);
      expect(await processShardStats({ ...job, referenceDigest }, blobs, inProcessShardMath, arenas)).toEqual(
        second,
      );
    }
    // The math's answer holds no view of what it read, so the arena can be reused at once.
    await arenas.use(async (arena) => {
      const read = await blobs.getMany(
        refs.map((r) => r.blobDigest),
        { into: arena },
      );
      expect(read.every((bytes) => bytes?.buffer === arena.buffer)).toBe(true);
      const blobsRead = read.map((bytes, i) => ({
        blobDigest: at(refs, i).blobDigest,
        bytes: bytes ?? new Uint8Array(),
        weight: 1,
      }));
      // Every update, screened; and a lone update, whose median is itself.
      const answers = [
        { blobs: blobsRead, withPeers: true },
        { blobs: blobsRead.slice(0, 1), withPeers: false },
      ].map(({ blobs: some, withPeers }) =>
        shardMath({
          kind: 'sum',
          blobs: some,
          expectedShapes: SHAPES,
          frozen: FROZEN,
          withMedian: true,
          withPeers,
        }),
      );
      // A copy by value (structuredClone would share the SharedArrayBuffer behind a view).
      const snapshot = (): string =>
        JSON.stringify(answers, (_key, value: unknown) =>
          value instanceof Map
            ? [...value]
            : ArrayBuffer.isView(value)
              ? Array.from(value as Float32Array)
              : value,
        );
      const before = snapshot();
      new Uint8Array(arena.buffer).fill(0xff);
      expect(snapshot()).toBe(before);
      expect(answers.map((answer) => answer.median?.size)).toEqual([4, 4]);
    });
  });

  it('refuses, in the second pass, a blob that changed or vanished after it was summed', async () => {
    const blobs = new LocalDirBlobStore({ dir });
    const rng = createSeededRng('shard-stats-changed');
    const bytes = encodeFloat32Tensors(withoutFrozen(randomDelta(rng)));
    const blobDigest = sha256Hex(bytes);
    const refs = [
      { updateId: 'c0', devicePseudonym: 'd0', blobDigest, numExamples: 8, norm: 1, clipped: false },
    ];
    const referenceBytes = encodeFloat32Tensors(randomDelta(rng));
    const referenceDigest = sha256Hex(referenceBytes);
    await blobs.put(referenceDigest, referenceBytes);
    const job = {
      roundId: 'task:1',
      shardIndex: 0,
      expectedShapes: SHAPES,
      frozen: FROZEN,
      updates: refs,
      referenceDigest,
    };

    await expect(processShardStats(job, blobs)).rejects.toSatisfy((e) => FlotillaError.is(e, 'BLOB_MISSING'));
    await blobs.put(blobDigest, bytes);
    expect((await processShardStats(job, blobs)).updates.map((u) => u.updateId)).toEqual(['c0']);
    // Changed on disk behind the store's back (the store itself refuses bytes that do not hash).
    const changed = bytes.slice();
    changed[changed.length - 1] = (changed.at(-1) ?? 0) ^ 1;
    writeFileSync(join(dir, blobDigest.slice(0, 2), blobDigest), changed);
    await expect(processShardStats(job, blobs)).rejects.toSatisfy((e) =>
      FlotillaError.is(e, 'DIGEST_MISMATCH'),
    );
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
    // Bad ones among them: not in the store, a NaN, a frozen tensor that changed, a wrong shape,
    // bytes changed on disk after they were stored.
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
    await store(encodeFloat32Tensors(withoutFrozen(randomDelta(rng))), 13);
    const corrupted = refs.at(-1)?.blobDigest ?? '';
    writeFileSync(join(dir, corrupted.slice(0, 2), corrupted), new Uint8Array(64));
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
      'DIGEST_MISMATCH',
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
