// A device proves its own update was counted, trusting only the coordinator key it pinned: every
// accepted update's receipt names its record in the round log, and the device fetches an
// inclusion proof (`log:proof`) and checks it against a signed tree head. Real parts: a
// coordinator process, an aggregation worker, FlotillaDevices over socket.io, the test Redis.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { toBase64, verifyRoundLog, type TreeHeadLine } from '@flotilla/protocol';
import {
  loadOrCreateCoordinatorKey,
  redisKeys,
  redisOptionsFromUrl,
  roundLogKeys,
} from '@flotilla/coordinator/shared';
import type { AggregationWorker } from '@flotilla/coordinator/worker';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import * as chaos from './support/chaos-fleet.js';
import {
  startChildCoordinator,
  type ChildCoordinator,
} from '../../coordinator/test/support/child-coordinator.js';
import { readSignedLog, startRoundLogWorker } from '../../coordinator/test/support/fleet.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

const TASK = 'inclusion';

describe('devices check that the round log holds their updates', () => {
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  const dirs: string[] = [];
  const devices: chaos.ChaosDevice[] = [];
  const coordinators: ChildCoordinator[] = [];
  let worker: AggregationWorker | null = null;

  afterAll(async () => {
    await chaos.stopDevicesAndWorker(devices, worker);
    for (const c of coordinators) await c.kill();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    redis.disconnect();
  });

  async function fleet(label: string, count: number, before?: () => Promise<void>) {
    const prefix = uniquePrefix(label);
    const stateDir = mkdtempSync(join(tmpdir(), `flotilla-${label}-`));
    dirs.push(stateDir);
    const coordinator = await startChildCoordinator(await chaos.coordinatorProcessArgs(prefix, stateDir));
    coordinators.push(coordinator);
    const { url } = coordinator;
    await chaos.registerTask({ url }, TASK, { goalCount: count, minReports: count, maxRounds: 1 });
    const own: chaos.ChaosDevice[] = [];
    for (let index = 0; index < count; index++) {
      const id = `${label}-${index}`;
      const keys = await chaos.registerDevice({ url }, id);
      const trainer = new chaos.FastTrainer({ index, ...(before ? { before } : {}) });
      own.push(await chaos.startChaosDevice({ url, id, keys, taskId: TASK, trainer }));
    }
    devices.push(...own);
    const roundState = async () => redis.hget(redisKeys(prefix).round(`${TASK}:1`), 'state');
    return { prefix, stateDir, devices: own, roundState };
  }

  it('each device verifies its update against a signed tree head, and that head is one of the audited log', async () => {
    const f = await fleet('inclusion-ok', 3);
    worker = await startRoundLogWorker({ redis, prefix: f.prefix, stateDir: f.stateDir });
    await chaos.waitUntil(async () => (await f.roundState()) === 'COMMITTED', 60_000, 'round 1 committed');
    await chaos.waitUntil(
      () => f.devices.every((d) => d.record.inclusion.length === 1),
      PATIENCE_MS,
      'every device checked its inclusion',
    );
    for (const d of f.devices) {
      expect(d.record.inclusion.map(({ roundId, ok }) => ({ roundId, ok }))).toEqual([
        { roundId: `${TASK}:1`, ok: true },
      ]);
      expect(d.record.errors).toEqual([]);
    }
    // What the devices were shown is what an auditor verifies: each device's head is a line of the
    // log, and the log passes audit verify's checks with the coordinator key pinned.
    const coordinatorKey = toBase64(loadOrCreateCoordinatorKey(f.stateDir).publicKey);
    const lines = await readSignedLog(redis, f.prefix);
    expect(await verifyRoundLog(lines, { trustedKey: coordinatorKey })).toMatchObject({
      ok: true,
      problems: [],
    });
    const heads = lines.filter((line): line is TreeHeadLine => 'treeHead' in line);
    for (const d of f.devices) {
      const shown = d.record.inclusion[0]?.head;
      expect(shown?.treeHead.keyId).toBe(coordinatorKey);
      expect(
        heads.some(
          (h) => h.signature === shown?.signature && h.treeHead.rootHash === shown.treeHead.rootHash,
        ),
      ).toBe(true);
    }
  });

  it('a device reports a proof that does not lead to the signed root (the stored tree was tampered with)', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const f = await fleet('inclusion-bad', 2, () => gate);
    await chaos.waitUntil(async () => (await f.roundState()) === 'REPORTING', PATIENCE_MS, 'the round plan');
    // Overwrite every stored subtree of the log (the records before the devices' updates): the
    // coordinator's signed roots stay right, but the proofs it builds from storage no longer do.
    const tree = roundLogKeys(f.prefix).tree;
    const fields = await redis.hkeys(tree);
    expect(fields.length).toBeGreaterThan(0);
    for (const field of fields) await redis.hset(tree, field, randomBytes(32));
    release();
    await chaos.waitUntil(
      () => f.devices.every((d) => d.record.inclusion.length === 1),
      PATIENCE_MS,
      'every device checked its inclusion',
    );
    for (const d of f.devices) {
      expect(d.record.accepted).toEqual([`${TASK}:1`]);
      expect(d.record.inclusion[0]).toMatchObject({
        ok: false,
        detail: "the proof leads to a different root than the tree head's",
      });
      expect(d.record.errors.join('\n')).toContain('the round log does not prove update');
    }
  });
});
