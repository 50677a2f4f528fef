import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex, toBase64, type RoundPlan } from '@flotilla/protocol';
import { readRoundLog } from '../src/shared/round-log/index.js';
import {
  aggregateJobId,
  AGGREGATE_QUEUE,
  AggregateJobDataSchema,
  type AggregateJobData,
} from '../src/shared/queues.js';
import { publishRoundOutcome } from '../src/shared/round-outcomes.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { testRedisUrl } from '../../test-support/redis.js';
import { loraDelta, useTestFleet, verifyStoredLog, waitFor } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

describe('a full round with 10 devices', () => {
  const fleet = useTestFleet({
    task: { rounds: { goalCount: 10, overSelection: 1, minReports: 8 } },
    devices: 10,
  });
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));

  afterAll(() => redis.disconnect());

  // The `it`s are the steps of one round, in order.
  const roundId = 'test-task:1';
  let plans: RoundPlan[] = [];
  // Norms 0.05, 0.10, …, 0.50: every one within the clip bound 1.
  const blobs = Array.from({ length: 10 }, (_, i) => loraDelta(0.05 * (i + 1)));
  let data: AggregateJobData;

  it("selects all 10 and sends each the round's plan", async () => {
    const checkins = await Promise.all(fleet.devices.map((d) => d.checkIn('test-task')));
    for (const ack of checkins) expect(ack).toEqual({ ok: true, data: { status: 'waiting' } });
    plans = await Promise.all(fleet.devices.map((d) => d.waitForPlan()));
    for (const plan of plans) {
      expect(plan.roundId).toBe(roundId);
      expect(plan.clipNorm).toBe(1);
      expect(plan.adapter).toMatchObject({
        version: 0,
        digest: null,
        spec: { r: 2, targetModules: ['dense'] },
      });
    }
  });

  it('accepts every update and measures its norm', async () => {
    const acks = await Promise.all(
      fleet.devices.map((d, i) => d.report(plans[i] as RoundPlan, blobs[i] as Uint8Array)),
    );
    acks.forEach((ack, i) => {
      expect(ack.ok).toBe(true);
      if (ack.ok) expect(ack.data.norm).toBeCloseTo(0.05 * (i + 1), 6);
    });
  });

  it('enqueues one retried, expiring job holding exactly those updates, under pseudonyms', async () => {
    const queue = new Queue(AGGREGATE_QUEUE, {
      connection: redisOptionsFromUrl(testRedisUrl()),
      prefix: fleet.tc.coordinator.prefix,
    });
    const job = await waitFor(() => queue.getJob(aggregateJobId(roundId)), PATIENCE_MS, 'aggregate job');
    await queue.close();
    expect(job.id).toBe('round-test-task-1-aggregate');
    // Retried with backoff; dropped by BullMQ after 7 days (completed) or 30 days (failed).
    expect(job.opts).toMatchObject({
      attempts: 5,
      removeOnComplete: { age: 604_800 },
      removeOnFail: { age: 2_592_000 },
    });
    data = AggregateJobDataSchema.parse(job.data);
    expect(data).toMatchObject({
      taskId: 'test-task',
      roundId,
      roundNumber: 1,
      parentVersion: 0,
      clipNorm: 1,
    });
    expect(data.updates).toHaveLength(10);
    const byDigest = new Map(data.updates.map((u) => [u.blobDigest, u]));
    fleet.devices.forEach((d, i) => {
      const blob = blobs[i] ?? new Uint8Array();
      const ref = byDigest.get(sha256Hex(blob));
      expect(ref, d.deviceId).toBeDefined();
      expect(ref?.numExamples).toBe(10 + i);
      expect(ref?.norm).toBeCloseTo(0.05 * (i + 1), 6);
      expect(ref?.devicePseudonym).toMatch(/^dev_[0-9a-f]{32}$/);
      expect(ref?.devicePseudonym).not.toContain(d.deviceId);
    });
    const round = await fleet.tc.coordinator.rounds.get(roundId);
    expect(round?.state).toBe('AGGREGATING');
    expect(round?.acceptedCount).toBe(10);
  });

  it("commits on the worker's decision, tells the fleet, and opens the next round", async () => {
    // The worker's decision arrives over pub/sub: the round commits and the fleet hears of it.
    const promoted = new Promise((resolve) => fleet.devices[0]?.socket?.once('adapter:promoted', resolve));
    await publishRoundOutcome(redis, fleet.tc.coordinator.prefix, {
      taskId: 'test-task',
      roundId,
      decision: 'COMMITTED',
      version: 1,
      manifestDigest: 'a'.repeat(64),
      reasons: [],
    });
    expect(await promoted).toEqual({ taskId: 'test-task', version: 1, manifestDigest: 'a'.repeat(64) });
    await fleet.roundIn(roundId, 'COMMITTED');
    await waitFor(() => (fleet.devices[0]?.closed.length ?? 0) >= 2, PATIENCE_MS, 'round:closed COMMITTED');
    expect(fleet.devices[0]?.closed.map((c) => c.state)).toEqual(['AGGREGATING', 'COMMITTED']);
    const next = await waitFor(
      async () => {
        const current = await fleet.tc.coordinator.rounds.current('test-task');
        return current?.roundId === 'test-task:2' ? current : null;
      },
      PATIENCE_MS,
      'next round',
    );
    expect(next.roundId).toBe('test-task:2');
    expect(next.state).toBe('SELECTING');
  });

  it('writes every round event into a signed round log that verifies against the coordinator key', async () => {
    // Every round event went into the signed round log, which verifies against the coordinator key.
    const records = await readRoundLog(redis, fleet.tc.coordinator.prefix);
    const types = records.map((r) => r.event.type);
    expect(types.filter((t) => t === 'update.accepted')).toHaveLength(10);
    expect(types).toEqual(expect.arrayContaining(['round.opened', 'round.selected', 'round.closed']));
    const accepted = records.flatMap((r) => (r.event.type === 'update.accepted' ? [r.event.device] : []));
    expect(new Set(accepted)).toEqual(new Set(data.updates.map((u) => u.devicePseudonym)));
    const verdict = await verifyStoredLog(redis, fleet.tc.coordinator.prefix, {
      trustedKey: toBase64(fleet.tc.coordinator.coordinatorKey.publicKey),
    });
    expect(verdict.problems).toEqual([]);
    expect(verdict.ok).toBe(true);
  });
});
