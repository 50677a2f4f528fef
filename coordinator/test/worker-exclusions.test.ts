import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeFloat32Tensors, sha256Hex } from '@flotilla/protocol';
import type { AggregateUpdateRef } from '../src/shared/queues.js';
import { deltaLike, HIDDEN_BIAS, hiddenBiasTask, testRandom, workerTestEnvs } from './support/index.js';
import type { TensorMap, WorkerTestEnv } from './support/index.js';

const openEnv = workerTestEnvs();
const { spec: SPEC, modules: MODULES, initial: v0, biasOf: values } = hiddenBiasTask({ in: 4, out: 16 });
/** Honest deltas: one shared direction, scaled a little per device, plus small noise. */
function honestDeltas(count: number, seed: number): TensorMap[] {
  const rand = testRandom(seed);
  const direction = Array.from({ length: MODULES.hidden.out }, () => 0.05 * rand());
  return Array.from({ length: count }, (_, k) =>
    deltaLike(v0, (_, i) => (direction[i] ?? 0) * (1 + 0.05 * k) + 0.002 * rand()),
  );
}

/** Garbage bytes stored under their own digest: the blob is intact but not a safetensors file. */
async function garbageRef(e: WorkerTestEnv, id: string): Promise<AggregateUpdateRef> {
  const bytes = new TextEncoder().encode(`not a safetensors file ${id}`);
  const digest = sha256Hex(bytes);
  await e.blobs.put(digest, bytes);
  return {
    updateId: id,
    devicePseudonym: `dev_${id}`,
    blobDigest: digest,
    numExamples: 5,
    norm: 0.1,
    clipped: false,
  };
}

/** A valid delta whose stored file was then damaged on disk (bit rot): its digest no longer matches. */
async function bitRotRef(e: WorkerTestEnv, id: string, delta: TensorMap): Promise<AggregateUpdateRef> {
  const ref = await e.storeDelta(delta, { updateId: id, numExamples: 5 });
  const bytes = encodeFloat32Tensors(delta, {}, 'F32');
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
  writeFileSync(join(e.dir, 'blobs', ref.blobDigest.slice(0, 2), ref.blobDigest), bytes);
  return ref;
}

describe('aggregation worker: bad updates and audit rejections', () => {
  it('excludes a corrupt blob, a NaN delta, a wrong shape and a missing blob, and commits from the good ones', async () => {
    const e = openEnv('wk-excl');
    await e.createTask({ taskId: 'excl', adapter: SPEC, modules: MODULES, minReports: 3 });
    const good = honestDeltas(4, 3);
    const weights = [4, 8, 12, 16];
    const goodRefs = await Promise.all(
      good.map((d, k) => e.storeDelta(d, { updateId: `good${k}`, numExamples: weights[k] ?? 1 })),
    );
    const nan = deltaLike(v0, (_, i) => (i === 3 ? Number.NaN : 0.01));
    const wrongShape: TensorMap = new Map([
      [HIDDEN_BIAS, { shape: [8], values: new Float32Array(8).fill(0.01) }],
    ]);
    const bad = [
      await garbageRef(e, 'corrupt'),
      await bitRotRef(
        e,
        'rotten',
        deltaLike(v0, () => 0.02),
      ),
      await e.storeDelta(nan, { updateId: 'nan', numExamples: 5 }),
      await e.storeDelta(wrongShape, { updateId: 'shape', numExamples: 5 }),
      { ...(goodRefs[0] as AggregateUpdateRef), updateId: 'missing', blobDigest: 'ab'.repeat(32) },
    ];
    const [g0, g1, g2, g3] = goodRefs as [
      AggregateUpdateRef,
      AggregateUpdateRef,
      AggregateUpdateRef,
      AggregateUpdateRef,
    ];
    const [b0, b1, b2, b3, b4] = bad as [
      AggregateUpdateRef,
      AggregateUpdateRef,
      AggregateUpdateRef,
      AggregateUpdateRef,
      AggregateUpdateRef,
    ];
    const outcome = await e.runJob(
      {
        taskId: 'excl',
        roundNumber: 1,
        parentVersion: 0,
        updates: [b0, g0, b1, g1, b2, g2, b3, g3, b4],
      },
      1_700_000_200_000,
    );
    expect(outcome.decision).toBe('COMMITTED');
    expect(outcome.version).toBe(1);
    const text = outcome.reasons.join('\n');
    expect(text).toMatch(/update corrupt excluded \(CORRUPT_FILE\)/);
    expect(text).toMatch(/update rotten excluded \(DIGEST_MISMATCH\)/);
    expect(text).toMatch(/update nan excluded \(NON_FINITE\): .*NaN/);
    expect(text).toMatch(/update shape excluded \(SHAPE_MISMATCH\): .*\[8\].*\[16\]/);
    expect(text).toMatch(/update missing excluded \(BLOB_MISSING\)/);
    for (const ref of goodRefs) expect(text).not.toContain(`update ${ref.updateId} excluded`);

    const signed = await e.adapters.getManifest('excl', 1);
    expect(signed?.manifest.aggregation.participants).toBe(4);
    const adapter = values(await e.adapterTensors('excl', 1));
    const total = weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < adapter.length; i++) {
      const mean = good.reduce((sum, d, k) => sum + (weights[k] ?? 0) * (values(d)[i] ?? 0), 0) / total;
      expect(Math.abs((adapter[i] ?? NaN) - mean)).toBeLessThan(1e-7);
    }
    expect(e.log.ofType('aggregation')[0]?.participants).toHaveLength(4);
  });

  it('rejects the round when exclusions leave fewer usable updates than the quorum', async () => {
    const e = openEnv('wk-quorum');
    await e.createTask({ taskId: 'quorum', adapter: SPEC, modules: MODULES, minReports: 3 });
    const good = honestDeltas(2, 5);
    const refs = [
      ...(await Promise.all(good.map((d, k) => e.storeDelta(d, { updateId: `ok${k}`, numExamples: 3 })))),
      await garbageRef(e, 'junk'),
      await e.storeDelta(
        deltaLike(v0, () => Number.POSITIVE_INFINITY),
        { updateId: 'inf', numExamples: 3 },
      ),
    ];
    const outcome = await e.runJob(
      { taskId: 'quorum', roundNumber: 1, parentVersion: 0, updates: refs },
      1_700_000_300_000,
    );
    expect(outcome).toMatchObject({ decision: 'REJECTED', version: null, manifestDigest: null });
    expect(outcome.reasons[0]).toBe('only 2 usable update(s), quorum is 3');
    expect(outcome.reasons.join('\n')).toMatch(/update junk excluded \(CORRUPT_FILE\)/);
    expect(outcome.reasons.join('\n')).toMatch(/update inf excluded \(NON_FINITE\)/);
    expect(await e.adapters.listVersions('quorum')).toEqual([]);
    expect(e.log.events.map((ev) => ev.type)).toEqual(['rejection']);
  });

  it('rejects a candidate with a sign-flipped and a 100x-scaled update under a strict audit policy', async () => {
    const e = openEnv('wk-audit');
    await e.createTask({
      taskId: 'audit',
      adapter: SPEC,
      modules: MODULES,
      minReports: 3,
      clipNorm: 100,
      audit: { maxFlaggedFraction: 0, maxModuleDrift: 100 },
    });
    const honest = honestDeltas(6, 9);
    const base = honest[0] ?? v0;
    const flipped = deltaLike(base, (_, i) => -(values(base)[i] ?? 0));
    const scaled = deltaLike(base, (_, i) => 100 * (values(base)[i] ?? 0));
    const refs = await Promise.all([
      ...honest.map((d, k) => e.storeDelta(d, { updateId: `h${k}`, numExamples: 10 })),
      e.storeDelta(flipped, { updateId: 'flip', numExamples: 10 }),
      e.storeDelta(scaled, { updateId: 'boost', numExamples: 10 }),
    ]);
    const outcome = await e.runJob(
      { taskId: 'audit', roundNumber: 1, parentVersion: 0, clipNorm: 100, updates: refs },
      1_700_000_400_000,
    );
    expect(outcome).toMatchObject({ decision: 'REJECTED', version: null, manifestDigest: null });
    const flipLabel = refs[6]?.devicePseudonym ?? '?';
    const boostLabel = refs[7]?.devicePseudonym ?? '?';
    const text = outcome.reasons.join('\n');
    expect(text).toMatch(/2 of 8 updates flagged \(25%, limit 0%\)/);
    expect(text).toContain(`${flipLabel}: points away from the round's robust reference`);
    expect(text).toMatch(new RegExp(`${boostLabel}: norm \\S+ is an outlier`));
    for (const ref of refs.slice(0, 6)) expect(text).not.toContain(`${ref.devicePseudonym}:`);
    expect(await e.adapters.listVersions('audit')).toEqual([]);
    expect(await e.adapters.getManifest('audit', 1)).toBeNull();
    expect(e.log.events.map((ev) => ev.type)).toEqual(['aggregation', 'audit', 'rejection']);
    expect(e.log.ofType('audit')[0]?.decision).toBe('fail');
  });
});
