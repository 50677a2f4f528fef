import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Server } from 'socket.io';
import {
  SIGNING_DOMAINS,
  keyPairFromSeed,
  toBase64,
  verifyPayload,
  type RoundPlan,
} from '@flotilla/protocol';
import { FlotillaDevice } from '../src/device/flotilla-device.js';
import { MemoryKeyStore } from '../src/identity/key-store.js';
import type { Trainer } from '../src/device/trainer.js';

const coordinator = keyPairFromSeed(new Uint8Array(32).fill(1));
const deviceKeys = keyPairFromSeed(new Uint8Array(32).fill(2));
const NONCE = 'aa'.repeat(32);

/** A stand-in coordinator speaking just the handshake of docs/protocol.md. */
async function startFakeCoordinator(checkinReason = 'no-open-round') {
  const http: HttpServer = createServer((req, res) => {
    if (req.url?.startsWith('/socket.io')) return;
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'none' } }));
  });
  const io = new Server(http);
  const seen = {
    responses: [] as Array<{ valid: boolean }>,
    checkins: [] as unknown[],
    hello: [] as unknown[],
  };
  io.on('connection', (socket) => {
    seen.hello.push(socket.handshake.auth);
    socket.on('auth:response', (payload: { signature: string }, ack: (r: unknown) => void) => {
      const valid = verifyPayload(
        SIGNING_DOMAINS.authChallenge,
        { deviceId: 'dev-1', nonce: NONCE, coordinatorKey: toBase64(coordinator.publicKey) },
        payload.signature,
        toBase64(deviceKeys.publicKey),
      );
      seen.responses.push({ valid });
      ack({
        ok: true,
        data: { deviceId: 'dev-1', sessionToken: 's'.repeat(40), expiresAt: Date.now() + 60_000 },
      });
    });
    socket.on('checkin', (payload: unknown, ack: (r: unknown) => void) => {
      seen.checkins.push(payload);
      ack({ ok: true, data: { status: 'retry', retryAfterMs: 60_000, reason: checkinReason } });
    });
    socket.emit('auth:challenge', {
      nonce: NONCE,
      coordinatorKey: toBase64(coordinator.publicKey),
      serverTime: Date.now(),
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    close: () => new Promise<void>((resolve) => void io.close(() => resolve())),
  };
}

const idleTrainer: Trainer = {
  train: (_plan: RoundPlan) => Promise.resolve({ kind: 'skip', reason: 'no-data', detail: 'test' }),
};

describe('FlotillaDevice handshake', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('pins the coordinator key on first use, signs the challenge and checks in', async () => {
    const server = await startFakeCoordinator();
    cleanups.push(server.close);
    const keyStore = new MemoryKeyStore();
    const pinned: string[] = [];
    const device = new FlotillaDevice({
      url: server.url,
      deviceId: 'dev-1',
      keys: deviceKeys,
      taskId: 'task-a',
      trainer: idleTrainer,
      keyStore,
      onCoordinatorKeyPinned: (key) => pinned.push(key),
    });
    cleanups.push(() => device.stop());
    await device.start();
    expect(server.seen.hello).toEqual([{ deviceId: 'dev-1', protocolVersion: '1.0' }]);
    expect(server.seen.responses).toEqual([{ valid: true }]);
    expect(pinned).toEqual([toBase64(coordinator.publicKey)]);
    expect(await keyStore.loadCoordinatorKey()).toBe(toBase64(coordinator.publicKey));
    for (let i = 0; i < 100 && server.seen.checkins.length === 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(server.seen.checkins[0]).toMatchObject({ taskId: 'task-a', adapterVersion: 0 });
  });

  it('refuses to continue when the coordinator key differs from the pinned one', async () => {
    const server = await startFakeCoordinator();
    cleanups.push(server.close);
    const errors: Array<{ error: Error; fatal: boolean }> = [];
    const device = new FlotillaDevice({
      url: server.url,
      deviceId: 'dev-1',
      keys: deviceKeys,
      taskId: 'task-a',
      trainer: idleTrainer,
      coordinatorKey: toBase64(keyPairFromSeed(new Uint8Array(32).fill(9)).publicKey),
      onError: (error, fatal) => errors.push({ error, fatal }),
    });
    cleanups.push(() => device.stop());
    await expect(device.start()).rejects.toThrow();
    expect(await device.stopped).toBe('fatal');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.fatal).toBe(true);
    expect(errors[0]?.error).toMatchObject({ code: 'BAD_SIGNATURE' });
    expect(server.seen.responses).toEqual([]);
  });

  it('stops when the coordinator answers that the task runs no more rounds', async () => {
    const server = await startFakeCoordinator('task-stopped');
    cleanups.push(server.close);
    const device = new FlotillaDevice({
      url: server.url,
      deviceId: 'dev-1',
      keys: deviceKeys,
      taskId: 'task-a',
      trainer: idleTrainer,
    });
    cleanups.push(() => device.stop());
    await device.start();
    expect(await device.stopped).toBe('task-stopped');
    expect(server.seen.checkins).toHaveLength(1);
  });
});
