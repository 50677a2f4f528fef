import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  SIGNING_DOMAINS,
  initialAdapterTensors,
  manifestDigest,
  toBase64,
  verifyPayload,
  type AdapterSpec,
} from '@flotilla/protocol';
import { redisKeys } from '../src/shared/keys.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { readRoundOutcome, subscribeRoundOutcomes, type RoundOutcome } from '../src/shared/round-outcomes.js';
import { testRedisUrl } from '../../test-support/redis.js';
import { deltaLike, hiddenBiasTask, testRandom, workerTestEnvs, type TensorMap } from './support/index.js';

const ENQUEUED_AT = 1_700_000_100_000;
const openEnv = workerTestEnvs();

function get(map: TensorMap, name: string): Float32Array {
  const t = map.get(name);
  if (!t) throw new Error(`no tensor ${name}`);
  return t.values;
}

describe('aggregation worker: promotion', () => {
  // One job runs in beforeAll; each `it` checks one thing it left behind.
  describe('version 1 from 5 FedAvg LoRA deltas (fedit)', () => {
    const e = openEnv('wk-promo');
    const spec: AdapterSpec = { mode: 'lora', targetModules: ['hidden'], r: 2, alpha: 4, seed: 7 };
    const modules = { hidden: { in: 4, out: 3 } };
    const v0 = initialAdapterTensors(spec, modules);
    const weights = [10, 20, 30, 15, 25];
    let perDevice: TensorMap[] = [];
    let refs: Awaited<ReturnType<typeof e.storeDelta>>[] = [];
    let baseModelDigest: string;
    let outcome: RoundOutcome;
    let signed: NonNullable<Awaited<ReturnType<typeof e.adapters.getManifest>>>;
    const sub = new Redis(redisOptionsFromUrl(testRedisUrl()));
    const heard: RoundOutcome[] = [];
    let unsubscribe: () => Promise<void> = () => Promise.resolve();

    beforeAll(async () => {
      const { task } = await e.createTask({
        taskId: 'promo',
        adapter: spec,
        modules,
        strategy: { name: 'fedavg', loraRule: 'fedit' },
      });
      baseModelDigest = task.baseModel.digest;
      const rand = testRandom(11);
      // Correlated honest deltas: a shared direction plus a little per-device noise.
      const direction = deltaLike(v0, () => 0.05 * rand());
      perDevice = weights.map((_, k) =>
        deltaLike(direction, (name, i) => (get(direction, name)[i] ?? 0) * (1 + 0.1 * k) + 0.002 * rand()),
      );
      refs = await Promise.all(
        perDevice.map((d, k) => e.storeDelta(d, { updateId: `u${k}`, numExamples: weights[k] ?? 1 })),
      );
      unsubscribe = await subscribeRoundOutcomes(sub, e.prefix, (o) => heard.push(o));
      const job = { taskId: 'promo', roundNumber: 1, parentVersion: 0, updates: refs };
      outcome = await e.runJob(job, ENQUEUED_AT);
      const manifest = await e.adapters.getManifest('promo', 1);
      if (!manifest) throw new Error('no manifest');
      signed = manifest;
    });
    afterAll(async () => {
      await unsubscribe();
      sub.disconnect();
    });

    it('commits version 1 under a manifest signed with the coordinator key', async () => {
      expect(outcome.decision).toBe('COMMITTED');
      expect(outcome.version).toBe(1);
      expect(await e.adapters.listVersions('promo')).toEqual([1]);
      const { manifest } = signed;
      expect(
        verifyPayload(SIGNING_DOMAINS.manifest, manifest, signed.signature, toBase64(e.signingKey.publicKey)),
      ).toBe(true);
      expect(signed.coordinatorKey).toBe(toBase64(e.signingKey.publicKey));
      expect(outcome.manifestDigest).toBe(manifestDigest(manifest));
      expect(manifest).toMatchObject({
        taskId: 'promo',
        version: 1,
        parentVersion: 0,
        roundId: 'promo:1',
        baseModelDigest,
        aggregation: { strategy: 'fedavg', loraRule: 'fedit', participants: 5 },
        createdAt: ENQUEUED_AT,
        rollbackOf: null,
        privacy: null,
      });
    });

    it('stores the example-weighted mean as the F32 adapter, its F16 copy and the delta', async () => {
      const { manifest } = signed;
      // Hand-computed: v1 = v0 + Σ w_k Δ_k / Σ w_k, per tensor (fedit averages A and B separately).
      const total = weights.reduce((a, b) => a + b, 0);
      const adapter = await e.blobTensors(manifest.adapter.f32.digest);
      const f16 = await e.blobTensors(manifest.adapter.f16.digest);
      const delta = await e.blobTensors(manifest.delta?.f32.digest ?? '');
      expect([...adapter.keys()].sort()).toEqual([...v0.keys()].sort());
      for (const [name, init] of v0) {
        const got = get(adapter, name);
        const half = get(f16, name);
        const d = get(delta, name);
        expect(adapter.get(name)?.shape).toEqual(init.shape);
        for (let i = 0; i < init.values.length; i++) {
          let mean = 0;
          perDevice.forEach((p, k) => (mean += (weights[k] ?? 0) * (get(p, name)[i] ?? 0)));
          const expected = (init.values[i] ?? 0) + mean / total;
          expect(Math.abs((got[i] ?? NaN) - expected)).toBeLessThan(1e-6);
          // F16: relative rounding 2^-11, plus the smallest subnormal.
          expect(Math.abs((half[i] ?? NaN) - expected)).toBeLessThanOrEqual(
            Math.abs(expected) * 2 ** -11 + 6e-8,
          );
          expect(d[i]).toBe(Math.fround((got[i] ?? 0) - (init.values[i] ?? 0)));
        }
      }
    });

    it('stores the outcome and publishes it to the coordinators', async () => {
      const stored = await readRoundOutcome(e.redis, e.prefix, 'promo:1');
      expect(stored).toEqual(outcome);
      const deadline = Date.now() + 5_000;
      while (heard.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(heard).toEqual([
        expect.objectContaining({
          decision: 'COMMITTED',
          version: 1,
          manifestDigest: manifestDigest(signed.manifest),
        }),
      ]);
    });

    it("logs aggregation, audit and promotion, with each participant's weight", () => {
      const { manifest } = signed;
      expect(e.log.events.map((ev) => ev.type)).toEqual(['aggregation', 'audit', 'promotion']);
      const promotion = e.log.ofType('promotion')[0];
      expect(promotion).toMatchObject({
        version: 1,
        parentVersion: 0,
        manifestDigest: manifestDigest(manifest),
        adapterDigest: manifest.adapter.f32.digest,
      });
      const participants = e.log.ofType('aggregation')[0]?.participants ?? [];
      expect(new Map(participants.map((p) => [p.blobDigest, p.weight]))).toEqual(
        new Map(refs.map((r) => [r.blobDigest, r.numExamples])),
      );
    });
  });

  it('reproduces the NVFlare hello-numpy-sag end_to_end_three_rounds vector (bias mode, 2 clients, 3 rounds)', async () => {
    const VectorSchema = z.object({
      cases: z.array(z.object({ name: z.string() }).loose()),
    });
    const CaseSchema = z.object({
      name: z.literal('end_to_end_three_rounds'),
      initial: z.array(z.array(z.number())),
      each_client_adds: z.number(),
      clients: z.number().int(),
      rounds: z.number().int(),
      expected: z.array(z.array(z.number())),
    });
    const file = VectorSchema.parse(
      JSON.parse(readFileSync('/work/shared/vectors/aggregation-published.json', 'utf8')),
    );
    const vector = CaseSchema.parse(file.cases.find((c) => c.name === 'end_to_end_three_rounds'));
    const initial = vector.initial.flat();
    const expected = vector.expected.flat();
    const outputs = initial.length;

    const e = openEnv('wk-nvflare');
    const spec: AdapterSpec = { mode: 'bias', targetModules: ['dense'], r: 1, alpha: 1, seed: 0 };
    await e.createTask({
      taskId: 'sag',
      adapter: spec,
      modules: { dense: { in: 2, out: outputs } },
      goalCount: vector.clients,
      minReports: vector.clients,
      // This vector is about the sums: bias offsets of 3 on a base bias of 1 drift by 3, and both
      // clients send the same delta, which the audit flags as duplicates. Allow both.
      audit: { maxModuleDrift: 10, maxFlaggedFraction: 1 },
    });
    const v0 = initialAdapterTensors(spec, { dense: { in: 2, out: outputs } });
    const ones = deltaLike(v0, () => vector.each_client_adds);
    for (let round = 1; round <= vector.rounds; round++) {
      const refs = [];
      for (let c = 0; c < vector.clients; c++)
        refs.push(await e.storeDelta(ones, { updateId: `r${round}c${c}`, numExamples: 1 }));
      const outcome = await e.runJob(
        { taskId: 'sag', roundNumber: round, parentVersion: round - 1, updates: refs },
        ENQUEUED_AT + round,
      );
      expect(outcome).toMatchObject({ decision: 'COMMITTED', version: round });
    }
    expect(await e.adapters.listVersions('sag')).toEqual([1, 2, 3]);
    const v3 = await e.adapters.getManifest('sag', 3);
    const adapter = await e.blobTensors(v3?.manifest.adapter.f32.digest ?? '');
    const bias = get(adapter, 'base_model.model.dense.bias');
    const start = get(v0, 'base_model.model.dense.bias');
    for (let i = 0; i < outputs; i++)
      expect((bias[i] ?? NaN) - (start[i] ?? NaN)).toBe((expected[i] ?? NaN) - (initial[i] ?? NaN));
  });

  it('is idempotent: the same job processed again yields the same manifest and one version', async () => {
    const e = openEnv('wk-idem');
    const { spec, modules, initial: v0 } = hiddenBiasTask({ in: 3, out: 8 });
    await e.createTask({ taskId: 'idem', adapter: spec, modules, minReports: 2 });
    const refs = await Promise.all(
      [1, 2, 3].map((k) =>
        e.storeDelta(
          deltaLike(v0, (_, i) => 0.01 * k + 0.001 * i),
          {
            updateId: `i${k}`,
            numExamples: k,
          },
        ),
      ),
    );
    const job = { taskId: 'idem', roundNumber: 1, parentVersion: 0, updates: refs };
    const first = await e.runJob(job, ENQUEUED_AT);
    // A BullMQ retry after the decision was stored.
    const second = await e.runJob(job, ENQUEUED_AT);
    expect(second).toEqual(first);
    // A retry after a crash between promotion and storing the decision: everything is recomputed.
    await e.redis.del(redisKeys(e.prefix).roundOutcome('idem:1'));
    const third = await e.runJob(job, ENQUEUED_AT);
    expect(first.decision).toBe('COMMITTED');
    expect(third.manifestDigest).toBe(first.manifestDigest);
    expect(third.version).toBe(1);
    expect(await e.adapters.listVersions('idem')).toEqual([1]);
    expect(await e.adapters.latestVersion('idem')).toBe(1);
  });
});
