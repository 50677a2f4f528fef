// Issue 15: "No per-device upload quota: one session stored 300 junk blobs in 5 s; the upload cap
// is the largest maxBlobBytes of any task, not the device's task." Against coordinator child
// processes: a device stores at most 4 distinct blobs per round (fleet-wide: the quota is in
// Redis), only while a round it was selected in is reporting, and no larger than its own task's cap.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '@flotilla/protocol';
import { startChildFleet, type ChildFleet, type TestDevice } from './support/index.js';

async function codeOf(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

function put(url: string, device: TestDevice, bytes: Uint8Array): Promise<Response> {
  return fetch(`${url}/blobs/${sha256Hex(bytes)}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${device.session?.sessionToken ?? ''}` },
    body: Buffer.from(bytes),
  });
}

/** Digests stored in a local blob directory. */
function storedDigests(stateDir: string): Set<string> {
  const dir = join(stateDir, 'blobs');
  const found = new Set<string>();
  for (const shard of readdirSync(dir))
    if (/^[0-9a-f]{2}$/.test(shard)) for (const name of readdirSync(join(dir, shard))) found.add(name);
  return found;
}

describe('per-device upload quota and the cap of the device’s own task (real coordinator processes)', () => {
  let fleet: ChildFleet;
  let sibling: ChildFleet;
  let small: { taskId: string };
  let devices: TestDevice[];
  let outsider: TestDevice;
  let large: TestDevice;

  beforeAll(async () => {
    fleet = await startChildFleet();
    sibling = await startChildFleet({ join: fleet });
    small = await fleet.createTask({ taskId: 'small-task', maxBlobBytes: 4096 });
    const big = await fleet.createTask({ taskId: 'big-task', maxBlobBytes: 64 * 1024, goalCount: 1 });
    devices = await fleet.connectDevices(3, 'small');
    [outsider] = (await fleet.connectDevices(1, 'outsider')) as [TestDevice];
    [large] = (await fleet.connectDevices(1, 'large')) as [TestDevice];
    await fleet.select(devices, small.taskId);
    await fleet.select([large], big.taskId);
  });
  afterAll(async () => {
    await sibling.stop();
    await fleet.stop();
  });

  it('300 junk uploads from one session store 4 blobs; the rest are 429 QUOTA_EXCEEDED, also through another process', async () => {
    const device = devices[0] as TestDevice;
    const before = storedDigests(fleet.stateDir);
    const statuses: number[] = [];
    const junk = Array.from({ length: 300 }, () => new Uint8Array(randomBytes(1000)));
    for (const [i, bytes] of junk.entries()) {
      // Every other upload goes through the second coordinator process.
      const res = await put(i % 2 === 0 ? fleet.url : sibling.url, device, bytes);
      statuses.push(res.status);
      if (res.status === 429) expect(await codeOf(res)).toBe('QUOTA_EXCEEDED');
      else await res.arrayBuffer();
    }
    expect(statuses.filter((s) => s === 201)).toHaveLength(4);
    expect(statuses.filter((s) => s === 429)).toHaveLength(296);
    const added = [...storedDigests(fleet.stateDir)].filter((d) => !before.has(d));
    expect(added.sort()).toEqual(
      junk
        .slice(0, 4)
        .map((b) => sha256Hex(b))
        .sort(),
    );
    // Sending one of its 4 again is a retry, not a fifth blob.
    expect((await put(sibling.url, device, junk[1] as Uint8Array)).status).toBe(200);
  });

  it('a failed upload gives its place back', async () => {
    const device = devices[1] as TestDevice;
    const bytes = new Uint8Array(randomBytes(1000));
    const mismatch = await fetch(`${fleet.url}/blobs/${sha256Hex(new Uint8Array([7]))}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${device.session?.sessionToken ?? ''}` },
      body: Buffer.from(bytes),
    });
    expect(mismatch.status).toBe(400);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push((await put(fleet.url, device, new Uint8Array(randomBytes(900)))).status);
    expect(statuses).toEqual([201, 201, 201, 201, 429]);
  });

  it('a device that no reporting round selected cannot upload at all (403 NOT_SELECTED, nothing stored)', async () => {
    const bytes = new Uint8Array(randomBytes(1000));
    const res = await put(fleet.url, outsider, bytes);
    expect(res.status).toBe(403);
    expect(await codeOf(res)).toBe('NOT_SELECTED');
    expect(existsSync(join(fleet.stateDir, 'blobs', sha256Hex(bytes).slice(0, 2), sha256Hex(bytes)))).toBe(
      false,
    );
  });

  it("caps an upload at the device's own task's maxBlobBytes, not the largest of any task", async () => {
    const tenKiB = new Uint8Array(randomBytes(10 * 1024));
    // Refused before its body is read; a body of declared size up to 1 MiB is read and discarded
    // first, so the answer is not lost to a reset connection.
    const refused = await put(fleet.url, devices[2] as TestDevice, tenKiB);
    expect(refused.status).toBe(413);
    expect(await codeOf(refused)).toBe('BLOB_TOO_LARGE');
    // The device selected in the 64 KiB task may send it.
    expect((await put(fleet.url, large, tenKiB)).status).toBe(201);
  });
});
