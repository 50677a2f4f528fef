import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '@flotilla/protocol';
import { uniquePrefix } from '../../test-support/redis.js';
import {
  createTestTask,
  loraDelta,
  startTestCoordinator,
  TestDevice,
  type TestCoordinator,
} from './support/index.js';
import { parsePrometheusText, sampleValue } from './metrics-text-parser.js';

// A device's upload is hashed as it arrives. The coordinator process that received it keeps the
// bytes until the submission naming them, and validates that submission from memory; any other
// process (or one keeping nothing) reads the blob back from the store and hashes it again.

async function validations(tc: TestCoordinator): Promise<{ upload: number; store: number }> {
  const families = parsePrometheusText(await tc.coordinator.metrics.text());
  const count = (source: string) =>
    sampleValue(families, 'flotilla_update_validations_total', { source }) ?? 0;
  return { upload: count('upload'), store: count('store') };
}

describe('where a submission is validated from (two coordinator processes, one Redis)', () => {
  const prefix = uniquePrefix('validation-source');
  const stateDir = mkdtempSync(join(tmpdir(), 'flotilla-validation-source-'));
  const started: TestCoordinator[] = [];
  const devices: TestDevice[] = [];
  afterAll(async () => {
    for (const d of devices) d.disconnect();
    for (const tc of started) await tc.coordinator.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  async function connectedDevice(tc: TestCoordinator, deviceId: string): Promise<TestDevice> {
    const device = new TestDevice(tc.coordinator.url, deviceId);
    devices.push(device);
    await tc.coordinator.devices.registerDevice({ deviceId, publicKey: device.publicKey });
    expect(await device.connect()).toMatchObject({ ok: true });
    return device;
  }

  it('validates from the bytes kept since the upload, and reads the store where they were not kept', async () => {
    const [a, b] = [
      await startTestCoordinator({ prefix, stateDir }),
      await startTestCoordinator({ prefix, stateDir }),
    ];
    started.push(a, b);
    await createTestTask(a.coordinator, { rounds: { goalCount: 2, minReports: 2 } });
    const local = await connectedDevice(a, 'kept-1');
    const remote = await connectedDevice(a, 'elsewhere-2');
    for (const d of [local, remote]) expect(await d.checkIn('test-task')).toMatchObject({ ok: true });
    const plan = await local.waitForPlan();
    await remote.waitForPlan(plan.roundId);

    // Uploaded to a and submitted to a: validated from a's copy.
    expect(await local.report(plan, loraDelta(0.4))).toMatchObject({ ok: true });
    expect(await validations(a)).toEqual({ upload: 1, store: 0 });

    // Uploaded to b (same store, same session), submitted to a: a reads the blob back.
    const bytes = loraDelta(0.6);
    const put = await fetch(`${b.coordinator.url}/blobs/${sha256Hex(bytes)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${remote.session?.sessionToken ?? ''}` },
      body: Buffer.from(bytes),
    });
    expect(put.status).toBe(201);
    expect(await remote.submit(remote.metadata(plan, bytes))).toMatchObject({ ok: true });
    expect(await validations(a)).toEqual({ upload: 1, store: 1 });
  });

  it('keeps nothing with recentUploadBytes 0', async () => {
    const tc = await startTestCoordinator({ prefix: uniquePrefix('validation-none'), recentUploadBytes: 0 });
    started.push(tc);
    await createTestTask(tc.coordinator, { rounds: { goalCount: 1, minReports: 1 } });
    const device = await connectedDevice(tc, 'none-1');
    expect(await device.checkIn('test-task')).toMatchObject({ ok: true });
    const plan = await device.waitForPlan();
    expect(await device.report(plan, loraDelta(0.5))).toMatchObject({ ok: true });
    expect(await validations(tc)).toEqual({ upload: 0, store: 1 });
  });
});
