import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Server } from 'socket.io';
import {
  SIGNING_DOMAINS,
  encodeFloat32Tensors,
  keyPairFromSeed,
  sha256Hex,
  signPayload,
  toBase64,
  type AdapterManifest,
  type RoundPlan,
} from '@flotilla/protocol';
import { FlotillaDevice } from '../src/device/flotilla-device.js';
import type { Trainer } from '../src/device/trainer.js';

// A promotion broadcast can reach a device while it is already catching up to that very version
// (the coordinator's broadcast goes through the cluster adapter's Redis stream, the catch-up over
// HTTP). Found in issue 17's simulations as a run whose bytes differed by one manifest: the device
// fetched the latest manifest twice.

const coordinator = keyPairFromSeed(new Uint8Array(32).fill(1));
const deviceKeys = keyPairFromSeed(new Uint8Array(32).fill(2));
const TASK = 'task-a';

function versionOne() {
  const tensors = new Map([
    [
      'base_model.model.dense.lora_A.weight',
      { shape: [2, 3], values: Float32Array.from([1, 2, 3, 4, 5, 6]) },
    ],
    ['base_model.model.dense.lora_B.weight', { shape: [4, 2], values: new Float32Array(8).fill(0.5) }],
  ]);
  const bytes = encodeFloat32Tensors(tensors, {}, 'F32');
  const blob = { digest: sha256Hex(bytes), bytes: bytes.byteLength };
  const manifest: AdapterManifest = {
    taskId: TASK,
    version: 1,
    parentVersion: 0,
    roundId: `${TASK}:1`,
    baseModelDigest: 'ab'.repeat(32),
    spec: { mode: 'lora', targetModules: ['dense'], r: 2, alpha: 4, seed: 1 },
    adapter: { f32: blob, f16: blob },
    delta: { f32: blob, f16: blob },
    adapterConfigDigest: 'cd'.repeat(32),
    aggregation: { strategy: 'fedavg', loraRule: 'fedit', participants: 3 },
    metrics: { accuracy: 0.5 },
    audit: { decision: 'promote', reasons: [] },
    policyDigest: 'ef'.repeat(32),
    privacy: null,
    expectedCost: { fullBytes: blob.bytes, deltaBytes: blob.bytes * 10 },
    rollbackOf: null,
    createdAt: 1_700_000_000_001,
  };
  const signed = {
    manifest,
    coordinatorKey: toBase64(coordinator.publicKey),
    signature: signPayload(SIGNING_DOMAINS.manifest, manifest, coordinator.secretKey),
  };
  return { signed, bytes, digest: blob.digest };
}

const idleTrainer: Trainer = {
  train: (_plan: RoundPlan) => Promise.resolve({ kind: 'skip', reason: 'no-data', detail: 'test' }),
};

describe('a promotion heard during the catch-up that fetches it', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('does not make the device fetch the latest manifest again', async () => {
    const v1 = versionOne();
    const latestRequests: number[] = [];
    let announce: () => void = () => undefined;
    const http = createServer((req, res) => {
      if (req.url === `/api/tasks/${TASK}/adapters/latest/manifest`) {
        latestRequests.push(Date.now());
        // The broadcast overtakes the answer of the first request.
        if (latestRequests.length === 1) announce();
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(v1.signed));
        }, 200);
        return;
      }
      if (req.url === `/blobs/${v1.digest}`) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(Buffer.from(v1.bytes));
        return;
      }
      if (req.url?.startsWith('/socket.io')) return;
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'none' } }));
    });
    const io = new Server(http);
    io.on('connection', (socket) => {
      announce = () =>
        socket.emit('adapter:promoted', { taskId: TASK, version: 1, manifestDigest: 'aa'.repeat(32) });
      socket.on('auth:response', (_payload: unknown, ack: (r: unknown) => void) =>
        ack({
          ok: true,
          data: { deviceId: 'dev-1', sessionToken: 's'.repeat(40), expiresAt: Date.now() + 60_000 },
        }),
      );
      socket.on('checkin', (_payload: unknown, ack: (r: unknown) => void) =>
        ack({ ok: true, data: { status: 'retry', retryAfterMs: 60_000, reason: 'no-open-round' } }),
      );
      socket.emit('auth:challenge', {
        nonce: 'aa'.repeat(32),
        coordinatorKey: toBase64(coordinator.publicKey),
        serverTime: Date.now(),
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => void io.close(() => resolve())));
    const changes: number[] = [];
    const device = new FlotillaDevice({
      url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
      deviceId: 'dev-1',
      keys: deviceKeys,
      taskId: TASK,
      trainer: idleTrainer,
      coordinatorKey: toBase64(coordinator.publicKey),
      onAdapterChanged: ({ version }) => changes.push(version),
    });
    cleanups.push(() => device.stop());
    await device.start();
    const deadline = Date.now() + 10_000;
    while (changes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // Give a second catch-up, if one was started, time to ask.
    await new Promise((r) => setTimeout(r, 600));
    expect(changes).toEqual([1]);
    expect(device.adapterVersion).toBe(1);
    expect(latestRequests).toHaveLength(1);
  });
});
