// Issue 15: "No garbage collection. Required: removal of blobs that no round references after a
// grace period (and of retained deltas past their retention)." Against two coordinator processes
// (both sweeping; a lock in Redis takes turns) and a worker process: junk, unregistered uploads
// and the aggregate go once unused past the grace period; nothing a round in flight may need, no
// retained delta within its retention, no base model, promoted artifact or optimizer state goes.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex, type RoundPlan } from '@flotilla/protocol';
import { redisKeys } from '../src/shared/keys.js';
import { roundLogKeys } from '../src/shared/round-log/keys.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { testRedisUrl } from '../../test-support/redis.js';
import {
  loraDelta,
  spawnChildWorker,
  startChildFleet,
  waitFor,
  waitForPromotion,
  workerProcessEnv,
} from './support/index.js';
import type { ChildFleet, ChildWorker, TestDevice } from './support/index.js';

const GRACE_MS = 2000;
const GC_ARGS = ['--blob-gc-grace-ms', String(GRACE_MS), '--blob-gc-interval-ms', '300'];
/** How long the worker retains a round's deltas: 20 s, far past the grace period. */
const RETAIN_HOURS = 20 / 3600;

interface Sweep {
  startedAt: number;
  deleted: number;
  scanned: number;
}

/** The sweeps a coordinator child logged (`blob garbage collection`). */
function sweepsOf(fleet: ChildFleet): Sweep[] {
  const sweeps: Sweep[] = [];
  for (const line of fleet.coordinator.logs) {
    try {
      const parsed = JSON.parse(line) as { msg?: string } & Sweep;
      if (parsed.msg === 'blob garbage collection') sweeps.push(parsed);
    } catch {
      // not a JSON log line
    }
  }
  return sweeps;
}

describe('blob garbage collection (real coordinator and worker processes)', () => {
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  let fleet: ChildFleet;
  let sibling: ChildFleet;
  let worker: ChildWorker;
  let devices: TestDevice[];
  let plans: RoundPlan[];
  let taskId: string;
  let baseDigest: string;
  const deltas = [loraDelta(0.3), loraDelta(0.2), loraDelta(0.1)];
  const deltaDigests = deltas.map((d) => sha256Hex(d));
  const junk = loraDelta(0.05);
  const unregistered = new Uint8Array(2000).fill(3);

  /** Whether the blob is stored (HEAD with the operator token). */
  const stored = async (digest: string) =>
    (await fleet.operator(`/blobs/${digest}`, { method: 'HEAD' })).status === 200;
  /** Waits for a sweep (by either process) that started after `time`. */
  const sweepAfter = (time: number) =>
    waitFor(
      () => [...sweepsOf(fleet), ...sweepsOf(sibling)].find((s) => s.startedAt > time),
      30_000,
      `a sweep after ${time}`,
    );

  beforeAll(async () => {
    fleet = await startChildFleet({ extraArgs: GC_ARGS });
    sibling = await startChildFleet({ join: fleet, extraArgs: GC_ARGS });
    worker = spawnChildWorker({
      ...workerProcessEnv({ redisUrl: testRedisUrl(), prefix: fleet.prefix, stateDir: fleet.stateDir }),
      FLOTILLA_RETAIN_DELTAS_HOURS: String(RETAIN_HOURS),
    });
    await worker.waitForLog('worker ready');
    ({ taskId, baseDigest } = await fleet.createTask({ policy: { strategy: { name: 'fedadam' } } }));
    devices = await fleet.connectDevices(3);
    plans = await fleet.select(devices, taskId);
  });
  afterAll(async () => {
    await worker.kill();
    await sibling.stop();
    await fleet.stop();
    redis.disconnect();
  });

  it('keeps everything a round in flight may need, however old: its accepted deltas, an upload not yet submitted', async () => {
    const [d0, d1] = devices as [TestDevice, TestDevice];
    expect((await d0.upload(junk)).status).toBe(201);
    expect((await d0.report(plans[0] as RoundPlan, deltas[0] as Uint8Array)).ok).toBe(true);
    expect((await d1.report(plans[1] as RoundPlan, deltas[1] as Uint8Array)).ok).toBe(true);
    expect(
      (await fleet.operator(`/blobs/${sha256Hex(unregistered)}`, { method: 'PUT', body: unregistered }))
        .status,
    ).toBe(201);
    // Past the grace period, with the round still reporting.
    await sweepAfter(Date.now() + GRACE_MS + 200);
    for (const digest of [baseDigest, sha256Hex(junk), sha256Hex(unregistered), ...deltaDigests.slice(0, 2)])
      expect({ digest, stored: await stored(digest) }).toEqual({ digest, stored: true });
  });

  it('after the round, deletes junk, unregistered uploads and the aggregate; keeps retained deltas, the base, artifacts and optimizer state', async () => {
    const d2 = devices[2] as TestDevice;
    expect((await d2.report(plans[2] as RoundPlan, deltas[2] as Uint8Array)).ok).toBe(true);
    const { artifacts } = await waitForPromotion(fleet.url, taskId, 1);
    const promotedAt = Date.now();
    // The worker registers the promotion first and then writes its state (a retry after a crash
    // between the two must not step the optimizer twice), so the state may trail the promotion.
    const optimizerDigest = await waitFor(async () => {
      const workerState = JSON.parse(
        (await redis.get(redisKeys(fleet.prefix).workerState(taskId))) ?? '{}',
      ) as { optimizer?: { digest: string } };
      return workerState.optimizer?.digest ?? null;
    });
    expect(optimizerDigest).toMatch(/^[0-9a-f]{64}$/);
    const aggregateDigest = await waitFor(async () => {
      for (const entry of await redis.xrange(roundLogKeys(fleet.prefix).stream, '-', '+')) {
        const line = JSON.parse(entry[1][1] ?? '{}') as {
          event?: { type: string; aggregateDigest?: string };
        };
        if (line.event?.type === 'aggregation') return line.event.aggregateDigest;
      }
      return null;
    });
    expect(await stored(aggregateDigest)).toBe(true);

    await sweepAfter(promotedAt + GRACE_MS + 200);
    for (const digest of [sha256Hex(junk), sha256Hex(unregistered), aggregateDigest])
      expect({ digest, stored: await stored(digest) }).toEqual({ digest, stored: false });
    for (const digest of [baseDigest, optimizerDigest, ...artifacts, ...deltaDigests])
      expect({ digest, stored: await stored(digest) }).toEqual({ digest, stored: true });
  });

  it('deletes retained deltas once their retention is over, and only them', async () => {
    const retainedUntil = Number(
      (await redis.zscore(roundLogKeys(fleet.prefix).retained, deltaDigests[0] as string)) ?? Number.NaN,
    );
    expect(Number.isFinite(retainedUntil)).toBe(true);
    await sweepAfter(retainedUntil + 200);
    for (const digest of deltaDigests)
      expect({ digest, stored: await stored(digest) }).toEqual({ digest, stored: false });
    expect(await stored(baseDigest)).toBe(true);
    // The uploader's record went with the blob.
    expect(await redis.exists(redisKeys(fleet.prefix).blobUploaders(deltaDigests[0] as string))).toBe(0);
    // Both processes swept; the lock in Redis made them take turns.
    expect(sweepsOf(fleet).length).toBeGreaterThan(0);
    expect(sweepsOf(sibling).length).toBeGreaterThan(0);
  });
});
