// Issue 15 (medium): a worker SIGKILLed mid-aggregation left its round in AGGREGATING for about
// 65 s before another worker took the stalled job (BullMQ's 30 s lock and 30 s stalled check).
// With two worker processes on their default settings, the one in the middle of the job is
// SIGKILLed right after it renewed its lock (the worst moment: the lock then lives longest), and
// the other decides the round within a bound well below the old lock duration alone.
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { AGGREGATE_QUEUE, aggregateJobId, aggregateQueue } from '../src/shared/queues.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { subscribeRoundOutcomes, type RoundOutcome } from '../src/shared/round-outcomes.js';
import { DEFAULT_LOCK_DURATION_MS, DEFAULT_STALLED_INTERVAL_MS } from '../src/worker/job-locks.js';
import { testRedisUrl } from '../../test-support/redis.js';
import {
  seedCrashRound,
  spawnChildWorker,
  stateDirWorkerEnv,
  until,
  workerProcessEnv,
} from './support/index.js';
import type { ChildWorker } from './support/index.js';

/**
 * From the SIGKILL to the round's outcome. Worst case with the defaults: the lock's full
 * duration, one stalled-check period, then the job itself (well under a second here); 10 s of
 * room for a loaded machine. The old defaults could not meet it: their lock alone lasted 30 s.
 */
const DECIDED_WITHIN_MS = DEFAULT_LOCK_DURATION_MS + DEFAULT_STALLED_INTERVAL_MS + 10_000;

const children: ChildWorker[] = [];
const cleanups: Array<() => void> = [];
afterAll(async () => {
  for (const child of children) await child.kill();
  for (const cleanup of cleanups) cleanup();
});

/** Polls the job's lock until its TTL jumps back up (a renewal just happened), then SIGKILLs `worker`. */
async function killRightAfterRenewal(redis: Redis, lockKey: string, worker: ChildWorker): Promise<number> {
  let last = await redis.pttl(lockKey);
  await until('a lock renewal', 60_000, async () => {
    const ttl = await redis.pttl(lockKey);
    const renewed = last > 0 && ttl > last + 500;
    last = ttl;
    return renewed ? true : null;
  });
  const ttlAtKill = await redis.pttl(lockKey);
  await worker.kill();
  return ttlAtKill;
}

/** A round's job data, a queue, and the outcomes heard on the pub/sub channel. */
async function crashScene(label: string) {
  const env = stateDirWorkerEnv(label, cleanups);
  const stateDir = env.dir;
  const data = await seedCrashRound(env);
  const connection = redisOptionsFromUrl(testRedisUrl());
  const queue = aggregateQueue(connection, env.prefix);
  const redis = new Redis(connection);
  const subscriber = redis.duplicate();
  cleanups.push(() => {
    redis.disconnect();
    subscriber.disconnect();
    void queue.close();
  });
  const heard: RoundOutcome[] = [];
  await subscribeRoundOutcomes(subscriber, env.prefix, (o) => heard.push(o));
  // No lock settings: the workers run on their defaults.
  const workerEnv = workerProcessEnv({ redisUrl: testRedisUrl(), prefix: env.prefix, stateDir });
  const spawnWorker = (delayed: boolean) => {
    const child = spawnChildWorker(delayed ? { ...workerEnv, FLOTILLA_TEST_DELAY_MS: '300000' } : workerEnv);
    children.push(child);
    return child;
  };
  const lockKey = `${env.prefix}:${AGGREGATE_QUEUE}:${aggregateJobId(data.roundId)}:lock`;
  const outcome = (timeoutMs: number) =>
    until('the round outcome', timeoutMs, () =>
      Promise.resolve(heard.find((o) => o.roundId === data.roundId) ?? null),
    );
  return { env, data, queue, redis, heard, spawnWorker, lockKey, outcome };
}

describe('a worker SIGKILLed mid-aggregation', () => {
  it('hands its round to another worker within the bound of the default lock settings', async () => {
    const { env, data, queue, redis, spawnWorker, lockKey, outcome } = await crashScene('takeover');
    const doomed = spawnWorker(true);
    await doomed.waitForLog('worker ready');
    const job = await queue.add('aggregate', data, { jobId: aggregateJobId(data.roundId) });
    await doomed.waitForLog('test delay');
    const survivor = spawnWorker(false);
    await survivor.waitForLog('worker ready');
    expect(await job.getState()).toBe('active');

    const ttlAtKill = await killRightAfterRenewal(redis, lockKey, doomed);
    const killedAt = Date.now();
    const decided = await outcome(120_000);
    const decidedAfterMs = Date.now() - killedAt;
    console.info(
      `[worker] SIGKILL mid-aggregation with ${ttlAtKill} ms left on the lock -> round decided by the other worker after ${decidedAfterMs} ms`,
    );
    expect(decided).toMatchObject({ decision: 'COMMITTED', version: 1 });
    expect(await env.adapters.listVersions('crash')).toEqual([1]);
    expect(decidedAfterMs).toBeLessThan(DECIDED_WITHIN_MS);
  }, 240_000);

  it('rejects a round whose job killed two workers, with the reason, instead of leaving it in AGGREGATING', async () => {
    const { env, data, queue, redis, spawnWorker, lockKey, outcome } = await crashScene('twice');
    const first = spawnWorker(true);
    await first.waitForLog('worker ready');
    await queue.add('aggregate', data, { jobId: aggregateJobId(data.roundId) });
    await first.waitForLog('test delay');
    const second = spawnWorker(true);
    await second.waitForLog('worker ready');
    await killRightAfterRenewal(redis, lockKey, first);
    // The second worker takes the stalled job over and is killed inside it too.
    await second.waitForLog('test delay', 60_000);
    const third = spawnWorker(false);
    await third.waitForLog('worker ready');
    await killRightAfterRenewal(redis, lockKey, second);
    const killedAt = Date.now();
    // Past BullMQ's maxStalledCount (1) the job is failed without running again: the round is
    // decided REJECTED, with the reason, within the same bound.
    const decided = await outcome(90_000);
    console.info(`[worker] second SIGKILL -> round rejected after ${Date.now() - killedAt} ms`);
    expect(decided).toMatchObject({ decision: 'REJECTED', version: null });
    expect(decided.reasons.join(' ')).toContain('stalled more than allowable limit');
    expect(Date.now() - killedAt).toBeLessThan(DECIDED_WITHIN_MS);
    expect(await env.adapters.listVersions('crash')).toEqual([]);
  }, 240_000);
});
