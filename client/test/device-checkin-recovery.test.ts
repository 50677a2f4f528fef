import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Server, type Socket } from 'socket.io';
import { keyPairFromSeed, toBase64, type RoundPlan } from '@flotilla/protocol';
import { FlotillaDevice } from '../src/device/flotilla-device.js';
import type { Trainer } from '../src/device/trainer.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

// Two ways a device used to stop checking in for good (issue 17: a 1,000-device fleet stalled
// with devices connected and silent): an unanswered check-in on a live connection, and a
// "waiting" check-in whose round was abandoned in selection.

const coordinator = keyPairFromSeed(new Uint8Array(32).fill(1));
const deviceKeys = keyPairFromSeed(new Uint8Array(32).fill(2));

type CheckInReply = (socket: Socket, ack: (reply: unknown) => void) => void;

/** A stand-in coordinator: the handshake of docs/protocol.md, check-ins answered by `reply`. */
async function startFakeCoordinator(reply: CheckInReply) {
  const http: HttpServer = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'none' } }));
  });
  const io = new Server(http);
  const checkins: number[] = [];
  io.on('connection', (socket) => {
    socket.on('auth:response', (_payload: unknown, ack: (r: unknown) => void) =>
      ack({
        ok: true,
        data: { deviceId: 'dev-1', sessionToken: 's'.repeat(40), expiresAt: Date.now() + 60_000 },
      }),
    );
    socket.on('checkin', (_payload: unknown, ack: (r: unknown) => void) => {
      checkins.push(Date.now());
      reply(socket, ack);
    });
    socket.emit('auth:challenge', {
      nonce: 'aa'.repeat(32),
      coordinatorKey: toBase64(coordinator.publicKey),
      serverTime: Date.now(),
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    checkins,
    close: () => new Promise<void>((resolve) => void io.close(() => resolve())),
  };
}

const idleTrainer: Trainer = {
  train: (_plan: RoundPlan) => Promise.resolve({ kind: 'skip', reason: 'no-data', detail: 'test' }),
};

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return condition();
}

describe('FlotillaDevice keeps checking in', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function startDevice(url: string, options: { ackTimeoutMs?: number } = {}): FlotillaDevice {
    const device = new FlotillaDevice({
      url,
      deviceId: 'dev-1',
      keys: deviceKeys,
      taskId: 'task-a',
      trainer: idleTrainer,
      coordinatorKey: toBase64(coordinator.publicKey),
      reconnectDelayMs: 100,
      ...options,
    });
    cleanups.push(() => device.stop());
    return device;
  }

  it('after a check-in whose ack never came on a live connection', async () => {
    // The first check-in is swallowed (an overloaded coordinator); later ones are answered.
    const server = await startFakeCoordinator((_socket, ack) => {
      if (server.checkins.length > 1)
        ack({ ok: true, data: { status: 'retry', retryAfterMs: 60_000, reason: 'no-open-round' } });
    });
    cleanups.push(server.close);
    const device = startDevice(server.url, { ackTimeoutMs: 300 });
    await device.start();
    expect(await until(() => server.checkins.length >= 2, PATIENCE_MS)).toBe(true);
  });

  it('when the round it waits in is abandoned during selection', async () => {
    const server = await startFakeCoordinator((socket, ack) => {
      if (server.checkins.length > 1) {
        ack({ ok: true, data: { status: 'retry', retryAfterMs: 60_000, reason: 'no-open-round' } });
        return;
      }
      ack({ ok: true, data: { status: 'waiting' } });
      // Selection times out: the round is abandoned without a plan or a not-selected.
      setTimeout(
        () =>
          socket.emit('round:closed', {
            roundId: 'task-a:1',
            taskId: 'task-a',
            state: 'ABANDONED',
            reason: 'selection timeout: 1 of 2 devices checked in',
          }),
        100,
      );
    });
    cleanups.push(server.close);
    // planWaitMs stays at its default (2 minutes): the device must not need it.
    const device = startDevice(server.url);
    await device.start();
    expect(await until(() => server.checkins.length >= 2, PATIENCE_MS)).toBe(true);
  });
});
