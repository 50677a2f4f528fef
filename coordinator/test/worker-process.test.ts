import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { manifestDigest, toBase64, verifyRoundLogSync, type RoundLogLine } from '@flotilla/protocol';
import { aggregateJobId, aggregateQueue } from '../src/shared/queues.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { defaultRoundLogPath, readRoundLogFile } from '../src/shared/round-log/index.js';
import { subscribeRoundOutcomes, type RoundOutcome } from '../src/shared/round-outcomes.js';
import { processAggregateJob } from '../src/worker/job/process-aggregate-job.js';
import { testRedisUrl } from '../../test-support/redis.js';
import {
  seedCrashRound,
  spawnChildWorker,
  stateDirWorkerEnv,
  until,
  workerProcessEnv,
  workerTestEnv,
} from './support/index.js';
import type { ChildWorker } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

const children: ChildWorker[] = [];
const cleanups: Array<() => void> = [];
afterAll(async () => {
  for (const child of children) await child.kill();
  for (const cleanup of cleanups) cleanup();
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('worker process (node --import tsx coordinator/src/worker/main.ts)', () => {
  it('refuses to start without REDIS_URL, with a message saying why', async () => {
    const child = spawnChildWorker({});
    children.push(child);
    const { code } = await child.exited;
    expect(code).toBe(2);
    expect(child.logs.join('')).toMatch(
      /REDIS_URL is required: the worker must share the coordinator's Redis/,
    );
  });

  it('survives SIGKILL mid-job: the stalled job is retried by a new process, promoted once, same digest as a clean run', async () => {
    const env = stateDirWorkerEnv('wk-crash', cleanups);
    const stateDir = env.dir;
    const data = await seedCrashRound(env);

    const connection = redisOptionsFromUrl(testRedisUrl());
    const queue = aggregateQueue(connection, env.prefix);
    const sub = new Redis(connection);
    cleanups.push(() => sub.disconnect());
    const heard: RoundOutcome[] = [];
    const unsubscribe = await subscribeRoundOutcomes(sub, env.prefix, (o) => heard.push(o));

    const workerEnv = workerProcessEnv({
      redisUrl: testRedisUrl(),
      prefix: env.prefix,
      stateDir,
      fastLocks: true,
    });
    const first = spawnChildWorker({ ...workerEnv, FLOTILLA_TEST_DELAY_MS: '120000' });
    children.push(first);
    await first.waitForLog('worker ready');
    const job = await queue.add('aggregate', data, { jobId: aggregateJobId(data.roundId) });
    // The first worker is inside the job: aggregation computed and logged, promotion not yet done.
    await first.waitForLog('test delay');
    expect(await job.getState()).toBe('active');
    await first.kill();
    expect(await env.adapters.listVersions('crash')).toEqual([]);

    const second = spawnChildWorker(workerEnv);
    children.push(second);
    await second.waitForLog('worker ready');
    const outcome = await until('the round outcome', 40_000, () =>
      Promise.resolve(heard.find((o) => o.roundId === data.roundId) ?? null),
    );
    await until('job completion', PATIENCE_MS, async () =>
      (await job.getState()) === 'completed' ? true : null,
    );
    await sleep(300);
    expect(heard).toHaveLength(1);
    expect(outcome).toMatchObject({ decision: 'COMMITTED', version: 1 });
    expect(await env.adapters.listVersions('crash')).toEqual([1]);
    const signed = await env.adapters.getManifest('crash', 1);
    if (!signed) throw new Error('no manifest');
    expect(outcome.manifestDigest).toBe(manifestDigest(signed.manifest));

    // The same job data, processed once, in-process, on a fresh prefix and blob store.
    const clean = workerTestEnv('wk-clean');
    cleanups.push(() => clean.close());
    const cleanData = await seedCrashRound(clean);
    expect(cleanData).toEqual(data);
    const reference = await processAggregateJob(cleanData, clean.deps, job.timestamp);
    const cleanManifest = await clean.adapters.getManifest('crash', 1);
    expect(signed.manifest.adapter.f32.digest).toBe(cleanManifest?.manifest.adapter.f32.digest);
    expect(signed.manifest.delta?.f32.digest).toBe(cleanManifest?.manifest.delta?.f32.digest);
    expect(outcome.manifestDigest).toBe(reference.manifestDigest);

    // Both processes wrote to one signed hash chain: intact; the round is aggregated twice
    // (the killed attempt's record stays) but promoted once.
    const { records, corruptLines } = await readRoundLogFile(defaultRoundLogPath(stateDir));
    expect(corruptLines).toEqual([]);
    const types = (records as RoundLogLine[]).flatMap((r) => ('event' in r ? [r.event.type] : []));
    expect(types).toEqual(['aggregation', 'aggregation', 'audit', 'promotion']);
    const verdict = verifyRoundLogSync(records, { trustedKey: toBase64(env.signingKey.publicKey) });
    // No server opened the round in this test, so only "unknown round" rules may fail.
    expect(verdict.problems.filter((p) => p.code !== 'UNKNOWN_ROUND')).toEqual([]);

    // SIGTERM: the worker closes and exits 0.
    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect(second.logs.some((l) => l.includes('worker stopped'))).toBe(true);
    await unsubscribe();
    await queue.close();
  });
});
