import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64, verifyRoundLog } from '@flotilla/protocol';
import {
  AGGREGATE_QUEUE,
  AggregateJobDataSchema,
  aggregateJobId,
  readRoundLog,
  redisKeys,
  redisOptionsFromUrl,
  loadOrCreateCoordinatorKey,
} from '@flotilla/coordinator/shared';
import type { AggregationWorker } from '@flotilla/coordinator/worker';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import {
  coordinatorProcessArgs,
  FastTrainer,
  readSignedLog,
  registerDevice,
  registerTask,
  startChaosDevice,
  startChaosWorker,
  startChildCoordinator,
  stopDevicesAndWorker,
  waitUntil,
} from './support/index.js';
import type { ChaosDevice, ChildCoordinator } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

const TASK = 'chaos-kill';
const DEVICES = 6;

// SIGKILL of the coordinator process while real devices are in the middle of a round. The devices
// reconnect on their own (socket.io reconnection, new challenge, new session), the acknowledged
// updates survive in Redis, the round completes after the restart and the next one runs.
describe('chaos: SIGKILL of the coordinator with real devices', () => {
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  const processes: ChildCoordinator[] = [];
  const devices: ChaosDevice[] = [];
  const dirs: string[] = [];
  let worker: AggregationWorker | null = null;

  afterAll(async () => {
    await stopDevicesAndWorker(devices, worker);
    for (const p of processes) await p.kill();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    redis.disconnect();
  });

  // The kill and the restart happen in beforeAll; the `it`s then follow the two rounds, in order.
  let started = 0;
  const prefix = uniquePrefix('chaos-kill');
  const keys = redisKeys(prefix);
  let signingKey: ReturnType<typeof loadOrCreateCoordinatorKey>;
  let acknowledged: string[] = [];
  let keptAfterKill: string[] = [];
  let authsBefore: number[] = [];
  let second: ChildCoordinator;

  const committed = async (roundId: string) =>
    waitUntil(
      async () => {
        const state = await redis.hget(keys.round(roundId), 'state');
        if (state === 'ABANDONED' || state === 'REJECTED') throw new Error(`${roundId} ${state}`);
        return state === 'COMMITTED';
      },
      45_000,
      `${roundId} COMMITTED`,
    );

  beforeAll(async () => {
    started = Date.now();
    const stateDir = mkdtempSync(join(tmpdir(), 'flotilla-chaos-kill-'));
    dirs.push(stateDir);
    const args = await coordinatorProcessArgs(prefix, stateDir);
    const first = await startChildCoordinator(args);
    processes.push(first);
    const url = first.url;

    await registerTask({ url }, TASK, {
      goalCount: DEVICES,
      minReports: 4,
      reportingDeadlineMs: 60_000,
      maxRounds: 2,
    });

    signingKey = loadOrCreateCoordinatorKey(stateDir);
    ({ worker } = await startChaosWorker({
      redisUrl: testRedisUrl(),
      redis,
      prefix,
      stateDir,
      signingKey,
    }));

    // Devices 2..5 hold their round-1 training until the coordinator has been killed and restarted.
    let release: () => void = () => undefined;
    const restarted = new Promise<void>((resolve) => (release = resolve));
    for (let i = 0; i < DEVICES; i++) {
      const id = `kill-dev-${i}`;
      const keys = await registerDevice({ url }, id);
      const trainer = new FastTrainer({
        index: i,
        before: (plan) => (i >= 2 && plan.roundNumber === 1 ? restarted : Promise.resolve()),
      });
      devices.push(await startChaosDevice({ url, id, keys, taskId: TASK, trainer }));
    }

    // Two updates acknowledged, four devices mid-training: kill -9.
    await waitUntil(async () => (await redis.hlen(keys.roundUpdates(`${TASK}:1`))) >= 2, 20_000, '2 acks');
    await waitUntil(
      () => devices.slice(0, 2).every((d) => d.record.accepted.length === 1),
      PATIENCE_MS,
      'acks',
    );
    await first.kill();
    acknowledged = devices.slice(0, 2).map((d) => d.id);
    keptAfterKill = (await redis.hkeys(keys.roundUpdates(`${TASK}:1`))).sort();
    authsBefore = devices.map((d) => d.record.authentications);

    second = await startChildCoordinator(args);
    processes.push(second);
    release();
  });

  it('keeps both acknowledged updates through a SIGKILL mid-round', () => {
    expect(keptAfterKill).toEqual(acknowledged);
  });

  it("completes the interrupted round after the restart with every device's update", async () => {
    await committed(`${TASK}:1`);
    const queue = new Queue(AGGREGATE_QUEUE, { connection: redisOptionsFromUrl(testRedisUrl()), prefix });
    const job = await queue.getJob(aggregateJobId(`${TASK}:1`));
    await queue.close();
    const data = AggregateJobDataSchema.parse(job?.data);
    expect(data.updates).toHaveLength(DEVICES);
    expect(Number(await redis.hget(keys.round(`${TASK}:1`), 'acceptedCount'))).toBe(DEVICES);
  });

  it('lets every device re-authenticate on the new process by itself', async () => {
    // Every device re-authenticated by itself on the new process.
    await waitUntil(
      () => devices.every((d, i) => d.record.authentications > (authsBefore[i] ?? 0)),
      15_000,
      'every device re-authenticated',
    );
  });

  it('runs the next round with the promoted adapter, every device taking part on its own', async () => {
    // The devices go on to the next round with the promoted adapter, on their own.
    await committed(`${TASK}:2`);
    expect(Number(await redis.get(keys.adapterLatest(TASK)))).toBe(2);
    await waitUntil(() => devices.every((d) => d.record.accepted.length === 2), PATIENCE_MS, 'round 2 acks');
    for (const d of devices) {
      expect(d.record.accepted).toEqual([`${TASK}:1`, `${TASK}:2`]);
      expect(d.record.refused).toEqual([]);
    }
  });

  it('leaves a round log that verifies, with both promotions', async () => {
    const records = await readRoundLog(redis, prefix);
    const verdict = await verifyRoundLog(await readSignedLog(redis, prefix), {
      trustedKey: toBase64(signingKey.publicKey),
    });
    expect(verdict.problems).toEqual([]);
    expect(records.filter((r) => r.event.type === 'promotion')).toHaveLength(2);
    console.info(
      `[chaos] coordinator SIGKILL: ${DEVICES} devices, 2 acks before the kill, restart ` +
        `${second.pid}, rounds 1-2 committed in ${Date.now() - started} ms`,
    );
  });
});
