// A worker process SIGKILLed in the middle of a hierarchical round: another process resumes the
// aggregate job from its saved step, and the round is promoted exactly once, with the candidate
// the killed process computed (DP noise from the CSPRNG is not drawn twice).
import { Queue } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import {
  decodeFloat32Tensors,
  initialAdapterTensors,
  privacyLedger,
  type AdapterSpec,
  type RoundLogLine,
  type RoundLogRecord,
} from '@flotilla/protocol';
import { SHARD_STATS_QUEUE, SHARD_SUM_QUEUE } from '../src/shared/hierarchical-flow.js';
import { aggregateJobId, aggregateQueue } from '../src/shared/queues.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { defaultRoundLogPath, readRoundLogFile } from '../src/shared/round-log/index.js';
import { readRoundOutcome } from '../src/shared/round-outcomes.js';
import { readWorkerState } from '../src/worker/job/worker-state.js';
import { testRedisUrl } from '../../test-support/redis.js';
import {
  deltaLike,
  jobData,
  spawnChildWorker,
  stateDirWorkerEnv,
  testRandom,
  until,
  workerProcessEnv,
} from './support/index.js';
import type { ChildWorker } from './support/index.js';

const SPEC: AdapterSpec = { mode: 'lora', targetModules: ['hidden'], r: 2, alpha: 4, seed: 7 };
const MODULES = { hidden: { in: 6, out: 5 } };

const children: ChildWorker[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const child of children) await child.kill();
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('hierarchical round across a worker crash', () => {
  it('resumes after SIGKILL from the saved step and promotes once', async () => {
    const env = stateDirWorkerEnv('hier-kill', cleanups);
    const stateDir = env.dir;
    await env.createTask({
      taskId: 'dpk',
      adapter: SPEC,
      modules: MODULES,
      goalCount: 14,
      minReports: 2,
      // DP-FedAvg: uniform weights, noise on the mean, drawn from the CSPRNG (no noise seed).
      dp: { noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 100, populationSize: 1000 },
      audit: { maxModuleDrift: 1e9 },
    });
    const v0 = initialAdapterTensors(SPEC, MODULES);
    const rand = testRandom(9);
    const refs = [];
    for (let k = 0; k < 14; k++)
      refs.push(
        await env.storeDelta(
          deltaLike(v0, () => 0.05 * rand()),
          { updateId: `k${k}`, numExamples: 4 + k },
        ),
      );
    const data = jobData({ taskId: 'dpk', roundNumber: 1, parentVersion: 0, updates: refs });

    const workerEnv = {
      ...workerProcessEnv({ redisUrl: testRedisUrl(), prefix: env.prefix, stateDir, fastLocks: true }),
      FLOTILLA_HIERARCHICAL_THRESHOLD: '12',
      FLOTILLA_SHARD_SIZE: '5',
      FLOTILLA_SHARD_MATH_THREADS: '1',
    };
    const first = spawnChildWorker({ ...workerEnv, FLOTILLA_TEST_DELAY_MS: '120000' });
    children.push(first);
    const ready = await first.waitForLog('worker ready');
    expect(ready).toMatchObject({ hierarchicalThreshold: 12, shardSize: 5, shardMathThreads: 1 });
    const connection = redisOptionsFromUrl(testRedisUrl());
    const queue = aggregateQueue(connection, env.prefix);
    cleanups.push(() => queue.close());
    const job = await queue.add('aggregate', data, { jobId: aggregateJobId(data.roundId), attempts: 3 });
    // The shard sums are done and the candidate is logged; the audit and promotion are not.
    await first.waitForLog('test delay');
    await first.kill();
    expect(await env.adapters.listVersions('dpk')).toEqual([]);

    const second = spawnChildWorker(workerEnv);
    children.push(second);
    await until('the resumed job', 40_000, async () =>
      (await job.getState()) === 'completed' ? true : null,
    );
    expect(await readRoundOutcome(env.redis, env.prefix, data.roundId)).toMatchObject({
      decision: 'COMMITTED',
      version: 1,
    });
    expect(await env.adapters.listVersions('dpk')).toEqual([1]);
    // Three shard sums; no per-update stats pass, since a DP task's audit screens no update alone.
    for (const [name, completed] of [
      [SHARD_SUM_QUEUE, 3],
      [SHARD_STATS_QUEUE, 0],
    ] as const) {
      const shards = new Queue(name, { connection, prefix: env.prefix });
      expect(await shards.getCompletedCount()).toBe(completed);
      await shards.close();
    }

    // Killed attempt and resumed attempt logged the same candidate; one audit, one promotion.
    const { records } = await readRoundLogFile(defaultRoundLogPath(stateDir));
    // The records, without the tree heads that sign them.
    const logged = (records as RoundLogLine[]).filter((r): r is RoundLogRecord => 'event' in r);
    const events = logged.map((r) => r.event);
    expect(events.map((e) => e.type)).toEqual(['aggregation', 'aggregation', 'audit', 'promotion']);
    const digests = events.flatMap((e) => (e.type === 'aggregation' ? [e.aggregateDigest] : []));
    expect(new Set(digests).size).toBe(1);
    // Charged once, before the first aggregation record was written: the log says so too.
    const ledger = privacyLedger(logged, 'dpk');
    expect(ledger.problems).toEqual([]);
    expect(ledger.rounds).toHaveLength(1);
    const state = await readWorkerState(env.redis, env.prefix, 'dpk', env.blobs);
    expect(state.accountant?.history).toEqual([{ q: 1, noiseMultiplier: 1, steps: 1 }]);
    // The promoted adapter is v0 plus that logged (noised) aggregate.
    const step = decodeFloat32Tensors((await env.blobs.get(digests[0] ?? '')) ?? new Uint8Array()).tensors;
    const signed = await env.adapters.getManifest('dpk', 1);
    const adapter = decodeFloat32Tensors(
      (await env.blobs.get(signed?.manifest.adapter.f32.digest ?? '')) ?? new Uint8Array(),
    ).tensors;
    for (const [name, init] of v0) {
      const expected = Float32Array.from(init.values, (v, i) => v + (step.get(name)?.values[i] ?? NaN));
      expect(adapter.get(name)?.values).toEqual(expected);
    }
  });
});
