import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nacl from 'tweetnacl';
import {
  SIGNING_DOMAINS,
  SignedTaskSchema,
  sha256Hex,
  signPayload,
  toBase64,
  verifyPayload,
  type AdapterManifest,
} from '@flotilla/protocol';
import { createTestTask, startTestCoordinator, type TestCoordinator } from './support/index.js';

const OPERATOR = 'operator-token-for-tests-0123456789';

async function errorOf(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

describe.each(['local', 'redis'] as const)('HTTP routes with the %s blob store', (kind) => {
  let tc: TestCoordinator;
  const blob = new Uint8Array(randomBytes(1000));
  const digest = sha256Hex(blob);

  beforeAll(async () => {
    tc = await startTestCoordinator({ blobStore: { kind } });
    const put = await fetch(`${tc.coordinator.url}/blobs/${digest}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${OPERATOR}` },
      body: blob,
    });
    expect(put.status).toBe(201);
  });
  afterAll(async () => {
    await tc.stop();
  });

  it('serves blobs immutably with ETag, conditional GET, HEAD and Range', async () => {
    const url = `${tc.coordinator.url}/blobs/${digest}`;
    const auth = { authorization: `Bearer ${OPERATOR}` };
    const full = await fetch(url, { headers: auth });
    expect(full.status).toBe(200);
    expect(full.headers.get('etag')).toBe(`"${digest}"`);
    expect(full.headers.get('cache-control')).toContain('immutable');
    expect(new Uint8Array(await full.arrayBuffer())).toEqual(blob);
    expect((await fetch(url, { headers: { ...auth, 'if-none-match': `"${digest}"` } })).status).toBe(304);
    const head = await fetch(url, { method: 'HEAD', headers: auth });
    expect(head.headers.get('content-length')).toBe('1000');
    const part = await fetch(url, { headers: { ...auth, range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 100-199/1000');
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(blob.subarray(100, 200));
    const tail = await fetch(url, { headers: { ...auth, range: 'bytes=-10' } });
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(blob.subarray(990));
    expect((await fetch(url, { headers: { ...auth, range: 'bytes=5000-' } })).status).toBe(416);
    const missing = await fetch(`${tc.coordinator.url}/blobs/${'0'.repeat(64)}`, { headers: auth });
    expect(missing.status).toBe(404);
    expect(await errorOf(missing)).toBe('BLOB_MISSING');
    const bad = await fetch(`${tc.coordinator.url}/blobs/not-a-digest`);
    expect(await errorOf(bad)).toBe('BAD_REQUEST');
    // Re-uploading existing content is idempotent.
    const again = await fetch(url, {
      method: 'PUT',
      headers: { authorization: `Bearer ${OPERATOR}` },
      body: blob,
    });
    expect(again.status).toBe(200);
  });

  it('serves the signed task and adapter manifests', async () => {
    await createTestTask(tc.coordinator, { taskId: `t-${kind}` });
    const res = await fetch(`${tc.coordinator.url}/api/tasks/t-${kind}`);
    const signed = SignedTaskSchema.parse(await res.json());
    expect(signed.coordinatorKey).toBe(toBase64(tc.coordinator.coordinatorKey.publicKey));
    expect(verifyPayload(SIGNING_DOMAINS.task, signed.task, signed.signature, signed.coordinatorKey)).toBe(
      true,
    );
    const baseRes = await fetch(`${tc.coordinator.url}/blobs/${signed.task.baseModel.digest}`, {
      headers: { authorization: `Bearer ${OPERATOR}` },
    });
    expect(sha256Hex(new Uint8Array(await baseRes.arrayBuffer()))).toBe(signed.task.baseModel.digest);
    expect((await fetch(`${tc.coordinator.url}/api/tasks/nope`)).status).toBe(404);

    const latestMissing = await fetch(`${tc.coordinator.url}/api/tasks/t-${kind}/adapters/latest/manifest`);
    expect(latestMissing.status).toBe(404);
    const manifest: AdapterManifest = {
      taskId: `t-${kind}`,
      version: 1,
      parentVersion: 0,
      roundId: `t-${kind}:1`,
      baseModelDigest: signed.task.baseModel.digest,
      spec: signed.task.adapter,
      adapter: { f32: { digest: 'c'.repeat(64), bytes: 10 }, f16: { digest: 'd'.repeat(64), bytes: 5 } },
      delta: null,
      adapterConfigDigest: 'e'.repeat(64),
      aggregation: { strategy: 'fedavg', loraRule: 'fedit', participants: 3 },
      metrics: { accuracy: 0.9 },
      audit: { decision: 'promote', reasons: [] },
      policyDigest: 'f'.repeat(64),
      privacy: null,
      expectedCost: { fullBytes: 10, deltaBytes: 0 },
      rollbackOf: null,
      createdAt: Date.now(),
    };
    const key = tc.coordinator.coordinatorKey;
    const signedManifest = {
      manifest,
      coordinatorKey: toBase64(key.publicKey),
      signature: signPayload(SIGNING_DOMAINS.manifest, manifest, key.secretKey),
    };
    await tc.coordinator.adapters.putManifest(signedManifest);
    const latest = await fetch(`${tc.coordinator.url}/api/tasks/t-${kind}/adapters/latest/manifest`);
    expect(latest.status).toBe(200);
    expect(await latest.json()).toEqual(signedManifest);
    const v1 = await fetch(`${tc.coordinator.url}/api/tasks/t-${kind}/adapters/1/manifest`);
    expect(((await v1.json()) as { manifest: { version: number } }).manifest.version).toBe(1);
    // One version is promoted once.
    await expect(tc.coordinator.adapters.putManifest(signedManifest)).rejects.toThrow(/not next/);
    expect(await tc.coordinator.adapters.listVersions(`t-${kind}`)).toEqual([1]);
  });

  it('enrolls by one-time token, registers, lists and revokes devices (operator only)', async () => {
    const base = tc.coordinator.url;
    expect((await fetch(`${base}/api/admin/devices`)).status).toBe(401);
    const tokenRes = await fetch(`${base}/api/admin/enrollment-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ttlMs: 50 }),
    });
    const { token } = (await tokenRes.json()) as { token: string };
    await new Promise((r) => setTimeout(r, 120));
    const publicKey = toBase64(nacl.sign.keyPair().publicKey);
    const expired = await fetch(`${base}/api/enroll`, {
      method: 'POST',
      body: JSON.stringify({ token, deviceId: 'late', publicKey }),
    });
    expect(await errorOf(expired)).toBe('UNAUTHORIZED');
    await fetch(`${base}/api/admin/devices`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR}` },
      body: JSON.stringify({ deviceId: 'op-dev', publicKey }),
    });
    const list = (await (
      await fetch(`${base}/api/admin/devices`, { headers: { authorization: `Bearer ${OPERATOR}` } })
    ).json()) as {
      devices: Array<{ deviceId: string; status: string }>;
    };
    expect(list.devices.map((d) => [d.deviceId, d.status])).toEqual([['op-dev', 'active']]);
    const revoked = await fetch(`${base}/api/admin/devices/op-dev`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${OPERATOR}` },
    });
    expect(((await revoked.json()) as { status: string }).status).toBe('revoked');
  });
});
