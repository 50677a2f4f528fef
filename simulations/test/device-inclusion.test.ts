// A device proves its own update was counted, or refused for the reason it was given, trusting
// only the coordinator key it pinned: every accepted update's receipt, and every refusal's answer,
// names its record in the round log, and the device fetches an inclusion proof (`log:proof`) and
// checks it against a signed tree head. Real parts: a coordinator process, an aggregation worker,
// FlotillaDevices over socket.io, the test Redis.
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
import {
  coordinatorProcessArgs,
  FastTrainer,
  readSignedLog,
  registerDevice,
  registerTask,
  startChaosDevice,
  startChildCoordinator,
  startRoundLogWorker,
  stopDevicesAndWorker,
  waitUntil,
} from './support/index.js';
import type { ChaosDevice, ChildCoordinator } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

const TASK = 'inclusion';

describe('devices check that the round log holds their updates', () => {
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  const dirs: string[] = [];
  const devices: ChaosDevice[] = [];
  const coordinators: ChildCoordinator[] = [];
  let worker: AggregationWorker | null = null;

  afterAll(async () => {
    await stopDevicesAndWorker(devices, worker);
    for (const c of coordinators) await c.kill();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    redis.disconnect();
  });

  /**
   * A coordinator process with the inclusion task and `count` devices; `before` holds their
   * training; `overBound` sends each update unclipped at norm 1.87, over the clip bound 1.
   */
  async function fleet(
    label: string,
    count: number,
    options: { before?: () => Promise<void>; overBound?: boolean } = {},
  ) {
    const { before, overBound = false } = options;
    const prefix = uniquePrefix(label);
    const stateDir = mkdtempSync(join(tmpdir(), `flotilla-${label}-`));
    dirs.push(stateDir);
    const coordinator = await startChildCoordinator(await coordinatorProcessArgs(prefix, stateDir));
    coordinators.push(coordinator);
    const { url } = coordinator;
    await registerTask({ url }, TASK, { goalCount: count, minReports: count, maxRounds: 1 });
    const own: ChaosDevice[] = [];
    for (let index = 0; index < count; index++) {
      const id = `${label}-${index}`;
      const keys = await registerDevice({ url }, id);
      const trainer = new FastTrainer({
        index,
        ...(before ? { before } : {}),
        ...(overBound ? { scale: 100 } : {}),
      });
      const clipping = overBound ? 'off' : 'enforce';
      own.push(await startChaosDevice({ url, id, keys, taskId: TASK, trainer, clipping }));
    }
    devices.push(...own);
    const roundState = async () => redis.hget(redisKeys(prefix).round(`${TASK}:1`), 'state');
    return { prefix, stateDir, devices: own, roundState };
  }

  /**
   * What the devices were shown is what an auditor verifies: the log passes audit verify's checks
   * with the coordinator key pinned, and each device's head is one of its lines. Returns the log.
   */
  async function expectHeadsOfAuditedLog(f: { prefix: string; stateDir: string; devices: ChaosDevice[] }) {
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
    return lines;
  }

  /**
   * Overwrites every stored subtree of the log (the records before the devices' answers): the
   * coordinator's signed roots stay right, but the proofs it builds from storage no longer do.
   */
  async function tamperWithStoredTree(prefix: string) {
    const segments = await redis.keys(roundLogKeys(prefix).treeSegmentPattern);
    expect(segments.length).toBeGreaterThan(0);
    for (const key of segments) await redis.set(key, randomBytes(await redis.strlen(key)));
  }

  /** A gate that holds the devices' training until released. */
  function trainingGate() {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    return { before: () => gate, release: () => release() };
  }

  it('each device verifies its update against a signed tree head, and that head is one of the audited log', async () => {
    const f = await fleet('inclusion-ok', 3);
    worker = await startRoundLogWorker({ redis, prefix: f.prefix, stateDir: f.stateDir });
    await waitUntil(async () => (await f.roundState()) === 'COMMITTED', 60_000, 'round 1 committed');
    await waitUntil(
      () => f.devices.every((d) => d.record.inclusion.length === 1),
      PATIENCE_MS,
      'every device checked its inclusion',
    );
    for (const d of f.devices) {
      expect(d.record.inclusion.map(({ roundId, refusal, ok }) => ({ roundId, refusal, ok }))).toEqual([
        { roundId: `${TASK}:1`, refusal: null, ok: true },
      ]);
      expect(d.record.errors).toEqual([]);
    }
    await expectHeadsOfAuditedLog(f);
  });

  it('a device reports a proof that does not lead to the signed root (the stored tree was tampered with)', async () => {
    const gate = trainingGate();
    const f = await fleet('inclusion-bad', 2, { before: gate.before });
    await waitUntil(async () => (await f.roundState()) === 'REPORTING', PATIENCE_MS, 'the round plan');
    await tamperWithStoredTree(f.prefix);
    gate.release();
    await waitUntil(
      () => f.devices.every((d) => d.record.inclusion.length === 1),
      PATIENCE_MS,
      'every device checked its inclusion',
    );
    for (const d of f.devices) {
      expect(d.record.accepted).toEqual([`${TASK}:1`]);
      expect(d.record.inclusion[0]).toMatchObject({
        refusal: null,
        ok: false,
        detail: "the proof leads to a different root than the tree head's",
      });
      expect(d.record.errors.join('\n')).toContain(
        `the round log does not prove update ${TASK}:1 was counted`,
      );
    }
  });

  it('a device whose update is refused over the clip bound verifies the refusal, with its reason, in the audited log', async () => {
    const f = await fleet('refusal-ok', 1, { overBound: true });
    const [d] = f.devices as [ChaosDevice];
    await waitUntil(() => d.record.inclusion.length === 1, PATIENCE_MS, 'the device checked its refusal');
    expect(d.record.refused).toEqual([{ roundId: `${TASK}:1`, code: 'NORM_EXCEEDED' }]);
    expect(d.record.inclusion.map(({ roundId, refusal, ok }) => ({ roundId, refusal, ok }))).toEqual([
      { roundId: `${TASK}:1`, refusal: 'NORM_EXCEEDED', ok: true },
    ]);
    expect(d.record.errors).toEqual([]);
    // The leaf the device proved is the audited log's update.refused record, with its reason.
    const lines = await expectHeadsOfAuditedLog(f);
    const leafIndex = Number(d.record.inclusion[0]?.detail.replace('leaf ', ''));
    const record = lines.find((line) => !('treeHead' in line) && line.leafIndex === leafIndex);
    expect(record && 'event' in record ? record.event : null).toMatchObject({
      type: 'update.refused',
      roundId: `${TASK}:1`,
      reason: 'NORM_EXCEEDED',
    });
  });

  it('a device reports a refusal whose proof does not lead to the signed root (the stored tree was tampered with)', async () => {
    const gate = trainingGate();
    const f = await fleet('refusal-bad', 1, { before: gate.before, overBound: true });
    const [d] = f.devices as [ChaosDevice];
    await waitUntil(async () => (await f.roundState()) === 'REPORTING', PATIENCE_MS, 'the round plan');
    await tamperWithStoredTree(f.prefix);
    gate.release();
    await waitUntil(() => d.record.inclusion.length === 1, PATIENCE_MS, 'the device checked its refusal');
    expect(d.record.refused).toEqual([{ roundId: `${TASK}:1`, code: 'NORM_EXCEEDED' }]);
    expect(d.record.inclusion[0]).toMatchObject({
      refusal: 'NORM_EXCEEDED',
      ok: false,
      detail: "the proof leads to a different root than the tree head's",
    });
    expect(d.record.errors.join('\n')).toContain(
      `the round log does not prove update ${TASK}:1 was refused NORM_EXCEEDED`,
    );
  });
});
