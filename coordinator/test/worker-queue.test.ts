import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initialAdapterTensors, type AdapterSpec } from '@flotilla/protocol';
import { aggregateJobId, aggregateQueue, type AggregateUpdateRef } from '../src/shared/queues.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { readRoundOutcome, type RoundOutcome } from '../src/shared/round-outcomes.js';
import { startAggregationWorker, type AggregationWorker } from '../src/worker/aggregation-worker.js';
import { testRedisUrl } from '../../test-support/redis.js';
import { deltaLike, jobData, MemoryRoundLog, until, workerTestEnv } from './support/index.js';
import type { WorkerTestEnv } from './support/index.js';

const SPEC: AdapterSpec = { mode: 'bias', targetModules: ['hidden'], r: 1, alpha: 1, seed: 0 };
const MODULES = { hidden: { in: 3, out: 6 } };

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('startAggregationWorker (BullMQ, math in a worker thread)', () => {
  // One worker and queue for the `it`s below, each of which queues one round.
  const stateDir = mkdtempSync(join(tmpdir(), 'flotilla-wk-queue-'));
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const env: WorkerTestEnv = workerTestEnv('wk-queue', { dir: stateDir });
  cleanups.push(() => env.close());
  const log = new MemoryRoundLog();
  const outcomes: RoundOutcome[] = [];
  const queue = aggregateQueue(redisOptionsFromUrl(testRedisUrl()), env.prefix);
  cleanups.push(() => queue.close());
  let refs: AggregateUpdateRef[] = [];

  beforeAll(async () => {
    const worker: AggregationWorker = await startAggregationWorker({
      redisUrl: testRedisUrl(),
      prefix: env.prefix,
      stateDir,
      signingKey: env.signingKey,
      roundLog: log,
      onOutcome: (o) => outcomes.push(o),
    });
    cleanups.push(() => worker.close());

    await env.createTask({ taskId: 'good', adapter: SPEC, modules: MODULES, minReports: 2 });
    // Krum picks updates; z·C/m noise is only calibrated for means, so computeRound refuses DP here.
    await env.createTask({
      taskId: 'dp-krum',
      adapter: SPEC,
      modules: MODULES,
      minReports: 2,
      strategy: { name: 'krum', byzantine: 0 },
      dp: { noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 10, populationSize: 100 },
    });
    const v0 = initialAdapterTensors(SPEC, MODULES);
    refs = await Promise.all(
      [1, 2, 3].map((k) =>
        env.storeDelta(
          deltaLike(v0, (_, i) => 0.01 * k + 0.001 * i),
          { updateId: `q${k}`, numExamples: k },
        ),
      ),
    );
  });

  it('decides a queued round once, however often its job is added', async () => {
    const good = jobData({ taskId: 'good', roundNumber: 1, parentVersion: 0, updates: refs });
    const goodJob = await queue.add('aggregate', good, { jobId: aggregateJobId(good.roundId) });
    // The same deterministic id again is a no-op: one job per round.
    const again = await queue.add('aggregate', good, { jobId: aggregateJobId(good.roundId) });
    expect(again.id).toBe(goodJob.id);
    await until('the good round', 30_000, async () =>
      (await goodJob.getState()) === 'completed' ? true : null,
    );
    const committed = await readRoundOutcome(env.redis, env.prefix, good.roundId);
    expect(committed).toMatchObject({ decision: 'COMMITTED', version: 1 });
    expect(outcomes).toEqual([committed]);
    expect(await env.adapters.listVersions('good')).toEqual([1]);
  });

  it('turns a job that cannot succeed into a REJECTED round with the reason, and logs the rejection', async () => {
    const bad = jobData({ taskId: 'dp-krum', roundNumber: 1, parentVersion: 0, updates: refs });
    const badJob = await queue.add('aggregate', bad, { jobId: aggregateJobId(bad.roundId) });
    await until('the failed job', 30_000, async () => ((await badJob.getState()) === 'failed' ? true : null));
    const rejected = await readRoundOutcome(env.redis, env.prefix, bad.roundId);
    expect(rejected).toEqual({
      taskId: 'dp-krum',
      roundId: 'dp-krum:1',
      decision: 'REJECTED',
      version: null,
      manifestDigest: null,
      reasons: [
        'aggregation failed (BAD_REQUEST): differential privacy is defined here for mean-type strategies, not krum',
      ],
    });
    expect(log.ofType('rejection').map((r) => r.roundId)).toEqual(['dp-krum:1']);
  });

  it('rejects the round of a job for an unknown task as NOT_FOUND', async () => {
    const unknown = jobData({ taskId: 'nope', roundNumber: 4, parentVersion: 0, updates: refs });
    const unknownJob = await queue.add('aggregate', unknown, { jobId: aggregateJobId(unknown.roundId) });
    await until('the unknown-task job', 30_000, async () =>
      (await unknownJob.getState()) === 'failed' ? true : null,
    );
    expect((await readRoundOutcome(env.redis, env.prefix, 'nope:4'))?.reasons).toEqual([
      'aggregation failed (NOT_FOUND): unknown task nope',
    ]);
  });
});
