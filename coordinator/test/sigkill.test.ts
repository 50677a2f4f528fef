import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex, type RoundPlan } from '@flotilla/protocol';
import { redisKeys } from '../src/shared/keys.js';
import { AGGREGATE_QUEUE, AggregateJobDataSchema, aggregateJobId } from '../src/shared/queues.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import {
  createTestTaskOverHttp,
  enrollWithToken,
  loraDelta,
  presentEnrollmentToken,
  startCoordinatorProcess,
  TestDevice,
  waitFor,
} from './support/index.js';
import type { ChildCoordinator } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

const OPERATOR = 'operator-token-for-sigkill-test-0123';

/** Registers the task over HTTP and enrolls `count` devices with one-time tokens. */
async function setUpFleet(url: string, count: number): Promise<TestDevice[]> {
  await createTestTaskOverHttp(url, OPERATOR, {
    taskId: 'kill-task',
    rounds: {
      goalCount: 4,
      overSelection: 1,
      minReports: 3,
      selectionTimeoutMs: 10_000,
      reportingDeadlineMs: 20_000,
      retryAfterMs: 5_000,
    },
  });
  const devices: TestDevice[] = [];
  for (let i = 0; i < count; i++) {
    const device = new TestDevice(url, `kd-${i}`);
    const { token, enrolled } = await enrollWithToken({ url, operatorToken: OPERATOR, device });
    expect(enrolled.status).toBe(201);
    const reuse = await presentEnrollmentToken(url, token, {
      deviceId: `${device.deviceId}-again`,
      publicKey: device.publicKey,
    });
    expect(reuse.status).toBe(401);
    const ack = await device.connect({ reconnection: true });
    expect(ack.ok).toBe(true);
    devices.push(device);
  }
  return devices;
}

describe('SIGKILL of the coordinator mid-REPORTING', () => {
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  const children: ChildCoordinator[] = [];
  const dirs: string[] = [];
  let devices: TestDevice[] = [];

  beforeAll(() => undefined);
  afterAll(async () => {
    for (const d of devices) d.disconnect();
    for (const c of children) await c.kill();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    redis.disconnect();
  });

  async function scenario(onRestart: 'resume' | 'abandon') {
    const prefix = uniquePrefix(`kill-${onRestart}`);
    const stateDir = mkdtempSync(join(tmpdir(), 'flotilla-kill-'));
    dirs.push(stateDir);
    const first = await startCoordinatorProcess({
      prefix,
      stateDir,
      operatorToken: OPERATOR,
      args: ['--on-restart', onRestart],
    });
    children.push(first);
    devices = await setUpFleet(first.url, 4);
    await Promise.all(devices.map((d) => d.checkIn('kill-task')));
    const plans = await Promise.all(devices.map((d) => d.waitForPlan()));
    const blobs = devices.map((_, i) => loraDelta(0.1 * (i + 1)));
    const [d0, d1, d2, d3] = devices as [TestDevice, TestDevice, TestDevice, TestDevice];
    const acked = await Promise.all([
      d0.report(plans[0] as RoundPlan, blobs[0] as Uint8Array),
      d1.report(plans[1] as RoundPlan, blobs[1] as Uint8Array),
    ]);
    for (const ack of acked) expect(ack.ok).toBe(true);

    await first.kill();
    const keys = redisKeys(prefix);
    const stored = await redis.hkeys(keys.roundUpdates('kill-task:1'));
    expect(stored.sort()).toEqual(['kd-0', 'kd-1']);

    const sessionsBefore = devices.map((d) => d.session?.sessionToken);
    const second = await startCoordinatorProcess({
      prefix,
      stateDir,
      operatorToken: OPERATOR,
      port: first.port,
      args: ['--on-restart', onRestart],
    });
    children.push(second);
    // socket.io-client reconnects by itself and answers the new challenge.
    await waitFor(
      () => devices.every((d, i) => d.socket?.connected && d.session?.sessionToken !== sessionsBefore[i]),
      15_000,
      'reconnect',
    );
    return { prefix, keys, plans, blobs, d2, d3 };
  }

  it('resumes the round, keeps every acknowledged update, and completes it', async () => {
    const { prefix, plans, blobs, d2, d3 } = await scenario('resume');
    expect((await d2.checkIn('kill-task')).ok).toBe(true);
    expect((await d3.checkIn('kill-task')).ok).toBe(true);
    const acks = await Promise.all([
      d2.report(plans[2] as RoundPlan, blobs[2] as Uint8Array),
      d3.report(plans[3] as RoundPlan, blobs[3] as Uint8Array),
    ]);
    for (const ack of acks) expect(ack.ok).toBe(true);
    const queue = new Queue(AGGREGATE_QUEUE, { connection: redisOptionsFromUrl(testRedisUrl()), prefix });
    const job = await waitFor(
      () => queue.getJob(aggregateJobId('kill-task:1')),
      PATIENCE_MS,
      'aggregate job',
    );
    await queue.close();
    const data = AggregateJobDataSchema.parse(job.data);
    expect(data.updates.map((u) => u.blobDigest).sort()).toEqual(blobs.map((b) => sha256Hex(b)).sort());
    for (const d of devices) d.disconnect();
    for (const c of children.splice(0)) await c.kill();
  });

  it('abandons the round with onRestart=abandon, still keeping the acknowledged updates', async () => {
    const { keys } = await scenario('abandon');
    const state = await waitFor(
      async () => {
        const s = await redis.hget(keys.round('kill-task:1'), 'state');
        return s === 'ABANDONED' ? s : null;
      },
      PATIENCE_MS,
      'ABANDONED',
    );
    expect(state).toBe('ABANDONED');
    expect((await redis.hkeys(keys.roundUpdates('kill-task:1'))).sort()).toEqual(['kd-0', 'kd-1']);
    expect(await redis.get(keys.currentRound('kill-task'))).toBe('kill-task:2');
  });
});
