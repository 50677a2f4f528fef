// Issue 15: "PUT to an already-stored digest drains an uncapped body with no idle timer; the
// docs say a body that does not hash to its path gets 400 DIGEST_MISMATCH — it gets 200."
// Against a coordinator child process: the second PUT of a digest is hashed, capped and timed
// like the first, and answered as docs/protocol.md says (with `bytes`).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '@flotilla/protocol';
import { loraDelta, rawRequest, startChildFleet, type ChildFleet, type TestDevice } from './support/index.js';

const IDLE_MS = 1500;
const CAP = 4096;

describe('PUT /blobs/:sha256 of a digest already stored (real coordinator process)', () => {
  let fleet: ChildFleet;
  let device: TestDevice;
  const blob = loraDelta(0.3);
  const digest = sha256Hex(blob);

  beforeAll(async () => {
    fleet = await startChildFleet({ extraArgs: ['--upload-idle-timeout-ms', String(IDLE_MS)] });
    const { taskId } = await fleet.createTask({ maxBlobBytes: CAP });
    const devices = await fleet.connectDevices(3);
    await fleet.select(devices, taskId);
    device = devices[0] as TestDevice;
    const first = await device.upload(blob);
    expect(first.status).toBe(201);
    expect(await first.json()).toEqual({ digest, bytes: blob.length, stored: true });
  });
  afterAll(async () => {
    await fleet.stop();
  });

  const put = (body: BodyInit, extra: RequestInit = {}) =>
    fetch(`${fleet.url}/blobs/${digest}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${device.session?.sessionToken ?? ''}` },
      body,
      ...extra,
    });

  it('answers 200 with bytes and stored: false for the same bytes', async () => {
    const again = await put(Buffer.from(blob));
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ digest, bytes: blob.length, stored: false });
  });

  it('answers 400 DIGEST_MISMATCH for other bytes, and keeps the stored blob', async () => {
    const impostor = new Uint8Array(randomBytes(blob.length));
    const res = await put(Buffer.from(impostor));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('DIGEST_MISMATCH');
    const stored = await fetch(`${fleet.url}/blobs/${digest}`, {
      headers: { authorization: `Bearer ${device.session?.sessionToken ?? ''}` },
    });
    expect(new Uint8Array(await stored.arrayBuffer())).toEqual(blob);
  });

  it('caps the body at the upload cap: 413 BLOB_TOO_LARGE for a chunked body past it', async () => {
    // A raw socket, not fetch: the server answers and closes while the body is still arriving,
    // and fetch reports that as a failed request (EPIPE) when its write loses the race.
    const chunk = (bytes: Uint8Array) =>
      Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n')]);
    const pieces = Array.from({ length: 10 }, () => chunk(new Uint8Array(randomBytes(CAP))));
    const { response } = await rawRequest({
      port: Number(new URL(fleet.url).port),
      head:
        `PUT /blobs/${digest} HTTP/1.1\r\nhost: 127.0.0.1\r\n` +
        `authorization: Bearer ${device.session?.sessionToken ?? ''}\r\n` +
        `content-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n`,
      body: [...pieces, Buffer.from('0\r\n\r\n')],
      then: 'end',
      timeoutMs: 20_000,
    });
    expect(response).toMatch(/^HTTP\/1\.1 413/);
    expect(response).toContain('"code":"BLOB_TOO_LARGE"');
  });

  it('times it: a body that stops arriving is answered 408 and its connection closed', async () => {
    const stalled = await rawRequest({
      port: Number(new URL(fleet.url).port),
      head:
        `PUT /blobs/${digest} HTTP/1.1\r\nhost: 127.0.0.1\r\n` +
        `authorization: Bearer ${device.session?.sessionToken ?? ''}\r\n` +
        `content-type: application/octet-stream\r\ncontent-length: ${blob.length}\r\n\r\n`,
      body: blob.subarray(0, 10),
      then: 'stall',
      timeoutMs: 20_000,
    });
    expect(stalled.response).toMatch(/^HTTP\/1\.1 408/);
    expect(stalled.closedAfterMs).not.toBeNull();
    expect(stalled.closedAfterMs ?? 0).toBeGreaterThanOrEqual(IDLE_MS - 50);
  });
});
