import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '@flotilla/protocol';
import { AdapterRegistry } from '../src/shared/adapter-registry.js';
import { AGGREGATE_QUEUE, AggregateJobDataSchema, aggregateJobId } from '../src/shared/queues.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import {
  createTestTaskOverHttp,
  enrollWithToken,
  FailoverDevice,
  loraDelta,
  OPERATOR_TOKEN,
  ProcessCluster,
  waitFor,
} from './support/index.js';
import type { ChildCoordinator } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

const TASK = 'scale-task';
const PER_SIDE = 3;

describe('two coordinator processes and two worker processes on one Redis', () => {
  const cluster = new ProcessCluster('scale');
  const { redis, prefix, keys } = cluster;
  let devices: FailoverDevice[] = [];
  // The `it`s are the steps of one run, in order: they share the processes, devices and rounds.
  let a: ChildCoordinator;
  let b: ChildCoordinator;
  let onA: FailoverDevice[] = [];
  let onB: FailoverDevice[] = [];
  let early: FailoverDevice[] = [];
  let ackedEarly: string[] = [];
  const blobs2 = new Map<string, Uint8Array>();
  let takenOver: { pid: number; token: number };

  afterAll(async () => {
    for (const d of devices) d.disconnect();
    await cluster.stop();
  });

  const startCoordinator = () =>
    cluster.startCoordinator(['--blob-store', 'redis', '--lease-ttl-ms', '3000']);

  async function reportAll(
    roundId: string,
    who: FailoverDevice[],
    blobs: Map<string, Uint8Array>,
  ): Promise<string[]> {
    const acked: string[] = [];
    await Promise.all(
      who.map(async (d, i) => {
        const plan = await d.waitForPlan(roundId, 20_000).catch(async (error: unknown) => {
          // Say where it stuck: the round's state and who the driver saw online.
          const round = await redis.hmget(keys.round(roundId), 'state', 'selectedCount', 'fence');
          const presence = await redis.hgetall(keys.presence(d.deviceId));
          throw new Error(
            `${String(error)}; round [state, selected, fence] ${JSON.stringify(round)}; presence ${JSON.stringify(presence)} at ${Date.now()}`,
          );
        });
        const bytes = loraDelta(0.05 * (i + 1) + 0.01 * devices.indexOf(d));
        blobs.set(d.deviceId, bytes);
        const ack = await d.report(plan, bytes, 10 + devices.indexOf(d));
        expect(ack, `${d.deviceId} via ${d.url}`).toMatchObject({ ok: true });
        acked.push(sha256Hex(bytes));
      }),
    );
    return acked;
  }

  async function aggregateJobDigests(roundId: string): Promise<string[]> {
    const queue = new Queue(AGGREGATE_QUEUE, { connection: redisOptionsFromUrl(cluster.redisUrl), prefix });
    try {
      const job = await waitFor(() => queue.getJob(aggregateJobId(roundId)), 15_000, `job of ${roundId}`);
      return AggregateJobDataSchema.parse(job.data)
        .updates.map((u) => u.blobDigest)
        .sort();
    } finally {
      await queue.close();
    }
  }

  beforeAll(async () => {
    a = await startCoordinator();
    b = await startCoordinator();
    await cluster.spawnWorker({ FLOTILLA_BLOB_STORE: 'redis' });
    await cluster.spawnWorker({ FLOTILLA_BLOB_STORE: 'redis' });
  });

  it('gives the round-driver lease to the first process; the second follows', async () => {
    const holder = (await redis.get(keys.driverHolder())) ?? '';
    expect(JSON.parse(holder)).toMatchObject({ pid: a.pid });
  });

  it('commits a round whose task, enrollments and devices are spread over both processes', async () => {
    // Registered through the follower: the driver hears of it on the tasks channel.
    await createTestTaskOverHttp(b.url, OPERATOR_TOKEN, {
      taskId: TASK,
      rounds: {
        goalCount: 2 * PER_SIDE,
        overSelection: 1,
        minReports: 2 * PER_SIDE - 1,
        selectionTimeoutMs: 20_000,
        reportingDeadlineMs: 30_000,
        retryAfterMs: 5_000,
      },
    });
    await waitFor(() => redis.get(keys.currentRound(TASK)), PATIENCE_MS, 'round 1 opened');

    devices = Array.from(
      { length: 2 * PER_SIDE },
      (_, i) =>
        new FailoverDevice(
          i < PER_SIDE ? [a.url, b.url] : [b.url, a.url],
          `sd-${i < PER_SIDE ? 'a' : 'b'}${i}`,
        ),
    );
    for (const d of devices) {
      // Minted on one process, spent on the other.
      const { enrolled } = await enrollWithToken({
        url: a.url,
        enrollUrl: b.url,
        operatorToken: OPERATOR_TOKEN,
        device: d,
      });
      expect(enrolled.status).toBe(201);
      await d.connect();
    }
    onA = devices.slice(0, PER_SIDE);
    onB = devices.slice(PER_SIDE);
    expect(onA.every((d) => d.url === a.url) && onB.every((d) => d.url === b.url)).toBe(true);

    // Round 1: selection waits for all six; three checked in on the follower, whose nudges and
    // fleet-wide presence let the driver select them; their plans cross over the adapter.
    for (const d of devices)
      expect(await d.checkIn(TASK)).toMatchObject({ ok: true, data: { status: 'waiting' } });
    const blobs1 = new Map<string, Uint8Array>();
    const acked1 = await reportAll(`${TASK}:1`, devices, blobs1);
    expect(await aggregateJobDigests(`${TASK}:1`)).toEqual(acked1.sort());
    const outcome1 = await cluster.outcome(`${TASK}:1`);
    expect(outcome1).toMatchObject({ decision: 'COMMITTED', version: 1 });
    await waitFor(
      () => devices.every((d) => d.closed.some((c) => c.roundId === `${TASK}:1` && c.state === 'COMMITTED')),
      PATIENCE_MS,
      'every device told of the commit',
    );
  });

  it("hands the round over when the driver is SIGKILLed mid-round: devices fail over, the lease moves with a fresh token, the driver's accepted updates stay", async () => {
    // Round 2: everyone is selected; one device per side reports, then the driver is SIGKILLed.
    await waitFor(
      async () => (await redis.get(keys.currentRound(TASK))) === `${TASK}:2`,
      PATIENCE_MS,
      'round 2',
    );
    for (const d of devices) expect(await d.checkIn(TASK)).toMatchObject({ ok: true });
    early = [onA[0], onB[0]].filter((d): d is FailoverDevice => d !== undefined);
    ackedEarly = await reportAll(`${TASK}:2`, early, blobs2);
    await a.kill();

    // A's devices fail over to B; B takes the lease over (fresh fencing token) and resumes the round.
    await waitFor(() => onA.every((d) => d.connected && d.url === b.url), 15_000, 'failover to B');
    takenOver = await waitFor(
      async () => {
        const raw = await redis.get(keys.driverHolder());
        const parsed = raw === null ? null : (JSON.parse(raw) as { pid: number; token: number });
        return parsed?.pid === b.pid ? parsed : null;
      },
      PATIENCE_MS,
      'lease taken over by B',
    );
    expect(takenOver.token).toBeGreaterThan(1);
    expect(await redis.hkeys(keys.roundUpdates(`${TASK}:2`))).toEqual(
      expect.arrayContaining(early.map((d) => d.deviceId)),
    );
  });

  it("commits the interrupted round with every update, under the new driver's fencing token", async () => {
    const rest = devices.filter((d) => !early.includes(d));
    for (const d of rest) expect(await d.checkIn(TASK)).toMatchObject({ ok: true });
    const ackedLate = await reportAll(`${TASK}:2`, rest, blobs2);

    const digests2 = await aggregateJobDigests(`${TASK}:2`);
    expect(digests2).toEqual([...ackedEarly, ...ackedLate].sort());
    const outcome2 = await cluster.outcome(`${TASK}:2`);
    expect(outcome2).toMatchObject({ decision: 'COMMITTED', version: 2 });
    const manifest = await new AdapterRegistry({ redis, prefix }).getManifest(TASK, 2);
    expect(manifest?.manifest.aggregation.participants).toBe(2 * PER_SIDE);
    expect(await redis.hget(keys.round(`${TASK}:2`), 'state')).toBe('COMMITTED');
    // The commit was written under B's token: the dead driver's token is fenced off.
    expect(await redis.hget(keys.round(`${TASK}:2`), 'fence')).toBe(String(takenOver.token));
  });
});
