// Issue 15 (High): "Raw per-device deltas are downloadable by anyone. GET /blobs/:sha256 needs no
// auth and the auditor API hands out every update's digest." Against coordinator and worker child
// processes: a raw delta is readable by its uploader and the operator only (GET, HEAD, Range,
// If-None-Match, through any coordinator process of the fleet); base models and promoted
// artifacts stay readable by enrolled devices; auditors read raw deltas only when the task's
// policy sets `auditorDeltaAccess`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex, type RoundPlan } from '@flotilla/protocol';
import { testRedisUrl } from '../../test-support/redis.js';
import {
  CHILD_AUDITOR,
  CHILD_OPERATOR,
  loraDelta,
  spawnChildWorker,
  startChildFleet,
  waitForPromotion,
  workerProcessEnv,
} from './support/index.js';
import type { ChildFleet, ChildWorker, TestDevice } from './support/index.js';

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const sessionOf = (device: TestDevice) => bearer(device.session?.sessionToken ?? '');

async function codeOf(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

interface LoggedRecord {
  /** Absent on a signed tree head's line. */
  event?: { type: string; blobDigest?: string; aggregateDigest?: string; roundId?: string };
}

/** The round log as an auditor reads it: GET /api/audit/records with the auditor token. */
async function auditRecords(url: string): Promise<LoggedRecord[]> {
  const res = await fetch(`${url}/api/audit/records?limit=1000`, { headers: bearer(CHILD_AUDITOR) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { records: LoggedRecord[] }).records;
}

describe('who may read a blob (real coordinator and worker processes)', () => {
  let fleet: ChildFleet;
  let worker: ChildWorker;
  let sibling: ChildFleet | null = null;
  let devices: TestDevice[];
  let outsider: TestDevice;
  let plans: RoundPlan[];
  let taskId: string;
  let baseDigest: string;
  const delta0 = loraDelta(0.3);
  const digest0 = sha256Hex(delta0);

  beforeAll(async () => {
    fleet = await startChildFleet();
    worker = spawnChildWorker(
      workerProcessEnv({ redisUrl: testRedisUrl(), prefix: fleet.prefix, stateDir: fleet.stateDir }),
    );
    await worker.waitForLog('worker ready');
    ({ taskId, baseDigest } = await fleet.createTask());
    devices = await fleet.connectDevices(3, 'member');
    [outsider] = (await fleet.connectDevices(1, 'outsider')) as [TestDevice];
    plans = await fleet.select(devices, taskId);
    const [d0] = devices as [TestDevice];
    expect((await d0.report(plans[0] as RoundPlan, delta0)).ok).toBe(true);
  });
  afterAll(async () => {
    await sibling?.stop();
    await worker.kill();
    await fleet.stop();
  });

  it('refuses a raw delta to anonymous clients (401) and to other devices (403), by GET, HEAD, Range and If-None-Match', async () => {
    const url = `${fleet.url}/blobs/${digest0}`;
    for (const init of [
      {},
      { method: 'HEAD' },
      { headers: { range: 'bytes=0-9' } },
      { headers: { 'if-none-match': `"${digest0}"` } },
    ] as RequestInit[]) {
      const anonymous = await fetch(url, init);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
      const other = await fetch(url, {
        ...init,
        headers: { ...(init.headers as Record<string, string>), ...sessionOf(outsider) },
      });
      expect(other.status).toBe(403);
      if (init.method !== 'HEAD') expect(await codeOf(other)).toBe('FORBIDDEN');
    }
    // A device of the same round is no better placed than an outsider.
    expect((await fetch(url, { headers: sessionOf(devices[1] as TestDevice) })).status).toBe(403);
  });

  it('answers a refusal the same way whether the blob exists or not', async () => {
    const absent = sha256Hex(new Uint8Array([1, 2, 3, 4]));
    const res = await fetch(`${fleet.url}/blobs/${absent}`, { headers: sessionOf(outsider) });
    expect(res.status).toBe(403);
  });

  it('serves a raw delta to its uploader and to the operator', async () => {
    const own = await fetch(`${fleet.url}/blobs/${digest0}`, {
      headers: sessionOf(devices[0] as TestDevice),
    });
    expect(own.status).toBe(200);
    expect(own.headers.get('cache-control')).toBe('private, max-age=31536000, immutable');
    expect(new Uint8Array(await own.arrayBuffer())).toEqual(delta0);
    const operator = await fleet.operator(`/blobs/${digest0}`, { headers: { range: 'bytes=4-11' } });
    expect(operator.status).toBe(206);
    expect(new Uint8Array(await operator.arrayBuffer())).toEqual(delta0.subarray(4, 12));
  });

  it("does not serve the digests the audit API lists to auditors, unless the task's policy allows it", async () => {
    const accepted = (await auditRecords(fleet.url)).filter((r) => r.event?.type === 'update.accepted');
    expect(accepted.map((r) => r.event?.blobDigest)).toContain(digest0);
    for (const record of accepted) {
      const res = await fetch(`${fleet.url}/blobs/${record.event?.blobDigest ?? ''}`, {
        headers: bearer(CHILD_AUDITOR),
      });
      expect(res.status).toBe(403);
    }
    // Base models are fleet artifacts: enrolled devices and auditors read them, anonymous clients do not.
    expect((await fetch(`${fleet.url}/blobs/${baseDigest}`, { headers: sessionOf(outsider) })).status).toBe(
      200,
    );
    expect((await fetch(`${fleet.url}/blobs/${baseDigest}`, { headers: bearer(CHILD_AUDITOR) })).status).toBe(
      200,
    );
    expect((await fetch(`${fleet.url}/blobs/${baseDigest}`)).status).toBe(401);
  });

  it('serves promoted artifacts to every enrolled device; deltas and the aggregate stay private after promotion', async () => {
    const [, d1, d2] = devices as [TestDevice, TestDevice, TestDevice];
    const delta1 = loraDelta(0.2);
    expect((await d1.report(plans[1] as RoundPlan, delta1)).ok).toBe(true);
    expect((await d2.report(plans[2] as RoundPlan, loraDelta(0.1))).ok).toBe(true);
    const { artifacts } = await waitForPromotion(fleet.url, taskId, 1);
    for (const digest of artifacts) {
      const res = await fetch(`${fleet.url}/blobs/${digest}`, { headers: sessionOf(outsider) });
      expect(res.status).toBe(200);
      expect(sha256Hex(new Uint8Array(await res.arrayBuffer()))).toBe(digest);
    }
    const aggregation = (await auditRecords(fleet.url)).find((r) => r.event?.type === 'aggregation');
    const aggregateDigest = aggregation?.event?.aggregateDigest ?? '';
    expect(aggregateDigest).toMatch(/^[0-9a-f]{64}$/);
    for (const digest of [aggregateDigest, sha256Hex(delta1)]) {
      expect((await fetch(`${fleet.url}/blobs/${digest}`, { headers: sessionOf(outsider) })).status).toBe(
        403,
      );
      expect((await fetch(`${fleet.url}/blobs/${digest}`, { headers: bearer(CHILD_AUDITOR) })).status).toBe(
        403,
      );
    }
    expect((await fleet.operator(`/blobs/${aggregateDigest}`)).status).toBe(200);
  });

  it('lets auditors read the accepted deltas of a task whose policy sets auditorDeltaAccess', async () => {
    const open = await fleet.createTask({ taskId: 'open-audit', policy: { auditorDeltaAccess: true } });
    const team = await fleet.connectDevices(3, 'open');
    const teamPlans = await fleet.select(team, open.taskId);
    const delta = loraDelta(0.25);
    expect((await (team[0] as TestDevice).report(teamPlans[0] as RoundPlan, delta)).ok).toBe(true);
    const res = await fetch(`${fleet.url}/blobs/${sha256Hex(delta)}`, { headers: bearer(CHILD_AUDITOR) });
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(delta);
    // The policy opens the delta to auditors, not to other devices.
    expect(
      (await fetch(`${fleet.url}/blobs/${sha256Hex(delta)}`, { headers: sessionOf(outsider) })).status,
    ).toBe(403);
  });

  it('decides the same on another coordinator process of the fleet (the record is in Redis)', async () => {
    sibling = await startChildFleet({ join: fleet });
    const url = `${sibling.url}/blobs/${digest0}`;
    const own = await fetch(url, { headers: sessionOf(devices[0] as TestDevice) });
    expect(own.status).toBe(200);
    expect(new Uint8Array(await own.arrayBuffer())).toEqual(delta0);
    expect((await fetch(url, { headers: sessionOf(outsider) })).status).toBe(403);
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: bearer(CHILD_OPERATOR) })).status).toBe(200);
  });
});
