// Large rounds through the real pipeline: the aggregate job of a BullMQ worker hands its updates
// to shard jobs (sum pass, then the audit's stats pass) and must decide exactly as one stage would.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import {
  decodeFloat32Tensors,
  initialAdapterTensors,
  type AdapterSpec,
  type RoundLogEventOf,
  type TaskDefinitionInput,
} from '@flotilla/protocol';
import { SHARD_STATS_QUEUE, SHARD_SUM_QUEUE } from '../src/shared/hierarchical-flow.js';
import { aggregateJobId, aggregateQueue, type AggregateJobData } from '../src/shared/queues.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { readRoundOutcome, type RoundOutcome } from '../src/shared/round-outcomes.js';
import { startAggregationWorker } from '../src/worker/aggregation-worker.js';
import { recomputeAggregateDigest } from '../src/worker/job/aggregate-digest.js';
import { processAggregateJob } from '../src/worker/job/process-aggregate-job.js';
import { testRedisUrl } from '../../test-support/redis.js';
import { deltaLike, jobData, MemoryRoundLog, testRandom, until, workerTestEnv } from './support/index.js';
import type { TensorMap, WorkerTestEnv } from './support/index.js';

const SPEC: AdapterSpec = { mode: 'lora', targetModules: ['hidden'], r: 2, alpha: 4, seed: 7 };
const MODULES = { hidden: { in: 6, out: 5 } };
/** 15 updates (one lost) with a threshold of 12 and shards of 5: three shard jobs per pass. */
const HONEST = 12;
const HIERARCHICAL = { threshold: 12, shardSize: 5 };
const connection = redisOptionsFromUrl(testRedisUrl());

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A fresh prefix whose blob store the worker shares (`<stateDir>/blobs`). */
function freshEnv(label: string): WorkerTestEnv {
  const stateDir = mkdtempSync(join(tmpdir(), `flotilla-${label}-`));
  const env = workerTestEnv(label, { dir: stateDir });
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  cleanups.push(() => env.close());
  return env;
}

/**
 * The task and 14 stored deltas: 12 honest ones around a shared direction, one sign-flipped
 * (`flip`) and one scaled by 100 (`big`). Same content on every call, so two environments hold
 * the same round.
 */
async function seedRound(
  env: WorkerTestEnv,
  strategy: TaskDefinitionInput['policy']['strategy'],
  weighting?: TaskDefinitionInput['policy']['weighting'],
): Promise<AggregateJobData> {
  await env.createTask({
    ...(weighting ? { weighting } : {}),
    taskId: 'big',
    adapter: SPEC,
    modules: MODULES,
    goalCount: HONEST + 2,
    minReports: 2,
    strategy,
    // Let the x100 update through the module-drift check: the flags are what is under test.
    audit: { maxModuleDrift: 1e9 },
  });
  const v0 = initialAdapterTensors(SPEC, MODULES);
  const rand = testRandom(5);
  const direction = deltaLike(v0, () => 0.05 * rand());
  const at = (name: string, i: number) => direction.get(name)?.values[i] ?? 0;
  const refs = [];
  for (let k = 0; k < HONEST + 2; k++) {
    const factor = k === HONEST ? -1 : k === HONEST + 1 ? 100 : 1 + 0.05 * k;
    const delta = deltaLike(direction, (name, i) => at(name, i) * factor + 0.004 * rand());
    const updateId = k === HONEST ? 'flip' : k === HONEST + 1 ? 'big' : `h${k}`;
    refs.push(await env.storeDelta(delta, { updateId, numExamples: 10 + 3 * k }));
  }
  // A blob that never arrived: excluded with its reason, the round goes on.
  refs.push({
    updateId: 'lost',
    devicePseudonym: 'dev_lost',
    blobDigest: 'f'.repeat(64),
    numExamples: 9,
    norm: 1,
    clipped: false,
  });
  return jobData({ taskId: 'big', roundNumber: 1, parentVersion: 0, updates: refs });
}

async function adapterOf(env: WorkerTestEnv, version: number): Promise<TensorMap> {
  const signed = await env.adapters.getManifest('big', version);
  const bytes = signed && (await env.blobs.get(signed.manifest.adapter.f32.digest));
  if (!bytes) throw new Error(`no adapter version ${version}`);
  return decodeFloat32Tensors(bytes).tensors;
}

/** Runs `data` through a real BullMQ aggregation worker (two, when `workers` is 2) and returns its outcome. */
async function runThroughQueue(env: WorkerTestEnv, data: AggregateJobData, workers = 2) {
  const log = new MemoryRoundLog();
  for (let i = 0; i < workers; i++) {
    const worker = await startAggregationWorker({
      redisUrl: testRedisUrl(),
      prefix: env.prefix,
      stateDir: env.dir,
      signingKey: env.signingKey,
      roundLog: log,
      useThread: false,
      hierarchical: HIERARCHICAL,
    });
    cleanups.push(() => worker.close());
  }
  const queue = aggregateQueue(connection, env.prefix);
  cleanups.push(() => queue.close());
  const job = await queue.add('aggregate', data, { jobId: aggregateJobId(data.roundId), attempts: 2 });
  const state = await until('the round', 30_000, async () => {
    const now = await job.getState();
    return now === 'completed' || now === 'failed' ? now : null;
  });
  const outcome = await readRoundOutcome(env.redis, env.prefix, data.roundId);
  if (!outcome) throw new Error('no outcome');
  return { outcome, log, state };
}

async function completedShardJobs(env: WorkerTestEnv) {
  const counts: Record<string, number> = {};
  for (const name of [SHARD_SUM_QUEUE, SHARD_STATS_QUEUE]) {
    const queue = new Queue(name, { connection, prefix: env.prefix });
    counts[name] = await queue.getCompletedCount();
    await queue.close();
  }
  return counts;
}

/** The per-update flags of the round's audit record: which device, for what. */
function flagsOf(log: MemoryRoundLog) {
  const audit = log.ofType('audit')[0];
  return audit?.findings.filter((f) => f.severity === 'warn').map((f) => [f.code, f.device]);
}

describe('hierarchical rounds in the aggregation pipeline', () => {
  it('sums and audits a FedAvg round in shard jobs and decides as one stage does', async () => {
    const env = freshEnv('hier-round');
    const data = await seedRound(env, { name: 'fedavg', loraRule: 'fedit' });
    const { outcome, log, state } = await runThroughQueue(env, data);
    expect(state).toBe('completed');
    expect(await completedShardJobs(env)).toEqual({ [SHARD_SUM_QUEUE]: 3, [SHARD_STATS_QUEUE]: 3 });

    // The same round in one stage: the job processor without BullMQ steps, on its own prefix.
    const single = freshEnv('hier-single');
    expect(await seedRound(single, { name: 'fedavg', loraRule: 'fedit' })).toEqual(data);
    const reference: RoundOutcome = await processAggregateJob(data, single.deps, 1_700_000_000_000);

    expect(outcome).toMatchObject({ decision: 'COMMITTED', version: 1 });
    expect(reference).toMatchObject({ decision: 'COMMITTED', version: 1 });
    // The robust reference is the median of the shard medians here, the exact median in one
    // stage: the same checks and the same flagged devices, scores within rounding of each other.
    const checksOf = (reasons: string[]) => reasons.filter((r) => !r.startsWith('dev_'));
    expect(checksOf(outcome.reasons)).toEqual(checksOf(reference.reasons));
    expect(outcome.reasons).toContain(
      `update lost excluded (BLOB_MISSING): blob ${'f'.repeat(64)} is not in the blob store`,
    );
    const hierarchical = await adapterOf(env, 1);
    const oneStage = await adapterOf(single, 1);
    // Independent reference: v0 + Σ n_k Δ_k / Σ n_k in float64, from the stored deltas.
    const v0 = initialAdapterTensors(SPEC, MODULES);
    const usable = data.updates.filter((u) => u.updateId !== 'lost');
    const deltas = await Promise.all(
      usable.map(async (u) => decodeFloat32Tensors((await env.blobs.get(u.blobDigest)) ?? new Uint8Array())),
    );
    const total = usable.reduce((s, u) => s + u.numExamples, 0);
    let worst = 0;
    let differing = 0;
    for (const [name, init] of v0) {
      const h = hierarchical.get(name)?.values ?? new Float32Array();
      const s = oneStage.get(name)?.values ?? new Float32Array();
      for (let i = 0; i < init.values.length; i++) {
        let acc = 0;
        usable.forEach((u, k) => (acc += u.numExamples * (deltas[k]?.tensors.get(name)?.values[i] ?? 0)));
        const mean = acc / total;
        const exact = (init.values[i] ?? 0) + mean;
        // Both round a float64 mean m to f32, then add it to v0 in f32: two round-to-nearest
        // steps, each off by at most 2^-24 of its result, so |error| <= 2^-24 (|m| + |v0 + m|).
        const tolerance = 2 ** -24 * (Math.abs(mean) + Math.abs(exact)) * (1 + 1e-6);
        expect(Math.abs((h[i] ?? NaN) - exact)).toBeLessThanOrEqual(tolerance);
        expect(Math.abs((s[i] ?? NaN) - exact)).toBeLessThanOrEqual(tolerance);
        worst = Math.max(worst, Math.abs((h[i] ?? 0) - (s[i] ?? 0)) / tolerance);
        differing += h[i] === s[i] ? 0 : 1;
      }
    }
    expect(worst).toBeLessThanOrEqual(2);
    // On this data the two are bit-identical (both round one float64 mean to f32 once).
    expect(differing).toBe(0);
    const digestOf = async (e: WorkerTestEnv) =>
      (await e.adapters.getManifest('big', 1))?.manifest.adapter.f32.digest;
    expect(await digestOf(env)).toBe(await digestOf(single));

    // The audit, fed by the shard jobs' statistics, flags the same devices for the same reasons.
    const flags = flagsOf(log);
    expect(flags).toEqual(flagsOf(single.log));
    const pseudonym = (id: string) => data.updates.find((u) => u.updateId === id)?.devicePseudonym;
    expect(flags?.sort()).toEqual(
      [
        ['low-cosine', pseudonym('flip')],
        ['norm-outlier', pseudonym('big')],
      ].sort(),
    );
    expect(log.ofType('audit')[0]?.metrics).toEqual(single.log.ofType('audit')[0]?.metrics);

    // The record says how the sums were grouped, and an auditor reproduces its digest from it.
    const record = log.ofType('aggregation')[0] as RoundLogEventOf<'aggregation'>;
    expect(record.strategyOptions).toMatchObject({
      hierarchicalShards: 3,
      hierarchicalShardSize: 5,
      hierarchicalShardCounts: '5,5,4',
    });
    expect(await recomputeAggregateDigest(record, env.blobs)).toBe(record.aggregateDigest);
    expect(log.ofType('promotion')).toHaveLength(1);
  });

  it("weighs the shard sums with the task's capped weights, as one stage does", async () => {
    const env = freshEnv('hier-capped');
    const capped = { rule: 'capped', cap: 25 } as const;
    const data = await seedRound(env, { name: 'fedavg', loraRule: 'fedit' }, capped);
    const { outcome, log } = await runThroughQueue(env, data);
    expect(outcome).toMatchObject({ decision: 'COMMITTED', version: 1 });
    expect(await completedShardJobs(env)).toEqual({ [SHARD_SUM_QUEUE]: 3, [SHARD_STATS_QUEUE]: 3 });
    const single = freshEnv('hier-capped-single');
    await seedRound(single, { name: 'fedavg', loraRule: 'fedit' }, capped);
    await processAggregateJob(data, single.deps, 1_700_000_000_000);

    // numExamples 10 + 3k, capped at 25: 10, 13, …, 22, then 25 for every larger claim.
    const record = log.ofType('aggregation')[0] as RoundLogEventOf<'aggregation'>;
    const claims = new Map(data.updates.map((u) => [u.blobDigest, u.numExamples]));
    for (const p of record.participants) expect(p.weight).toBe(Math.min(claims.get(p.blobDigest) ?? NaN, 25));
    expect(record.strategyOptions).toMatchObject({ weighting: 'capped', weightCap: 25 });
    expect(single.log.ofType('aggregation')[0]?.participants).toEqual(record.participants);
    expect(await recomputeAggregateDigest(record, env.blobs)).toBe(record.aggregateDigest);
    const digestOf = async (e: WorkerTestEnv) =>
      (await e.adapters.getManifest('big', 1))?.manifest.adapter.f32.digest;
    expect(await digestOf(env)).toBe(await digestOf(single));
    // The audit's leave-one-out means use the same weights in both pipelines.
    expect(log.ofType('audit')[0]?.metrics).toEqual(single.log.ofType('audit')[0]?.metrics);
    expect(flagsOf(log)).toEqual(flagsOf(single.log));
  });

  it('rejects the round, not parks it, when a shard job fails for good', async () => {
    const env = freshEnv('hier-lost');
    const data = await seedRound(env, { name: 'fedavg' });
    // Hold the audit pass until a delta that the sum pass read has gone from the blob store.
    const stats = new Queue(SHARD_STATS_QUEUE, { connection, prefix: env.prefix });
    cleanups.push(() => stats.close());
    await stats.pause();
    const run = runThroughQueue(env, data, 1);
    await until('the audit pass', 20_000, async () => ((await stats.getWaitingCount()) === 3 ? true : null));
    const gone = data.updates[0]?.blobDigest ?? '';
    rmSync(join(env.dir, 'blobs', gone.slice(0, 2), gone));
    await stats.resume();
    // Its stats job fails 3 times and is ignored; the aggregate job fails on both of its
    // attempts (the retry must not wait for the failed child again), then rejects the round.
    const { outcome, log, state } = await run;
    expect(state).toBe('failed');
    expect(outcome.decision).toBe('REJECTED');
    expect(outcome.reasons).toEqual([
      expect.stringMatching(
        /^aggregation failed \(INTERNAL\): 2 of 3 aggregate-shard-stats jobs completed; failed: .*no longer loads/,
      ),
    ]);
    expect(log.ofType('promotion')).toEqual([]);
  });

  it('runs a coordinate-median round above the threshold in one stage', async () => {
    const env = freshEnv('hier-median');
    const data = await seedRound(env, { name: 'median' });
    const { outcome, log } = await runThroughQueue(env, data, 1);
    expect(outcome.decision).toBe('COMMITTED');
    expect(await completedShardJobs(env)).toEqual({ [SHARD_SUM_QUEUE]: 0, [SHARD_STATS_QUEUE]: 0 });
    expect(log.ofType('aggregation')[0]?.strategyOptions).not.toHaveProperty('hierarchicalShards');
  });
});
