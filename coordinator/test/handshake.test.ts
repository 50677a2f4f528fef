import { io } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import { connectFleet, useTestFleet, type TestDevice } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

describe('handshake, per-connection and per-identity limits', () => {
  const fleet = useTestFleet({
    coordinator: { rateLimit: { perSecond: 0.1, burst: 3 } },
    devices: 1,
    label: 'hs',
  });

  async function connectError(auth: unknown): Promise<unknown> {
    const socket = io(fleet.tc.coordinator.url, {
      auth: auth as Record<string, unknown>,
      transports: ['websocket'],
      reconnection: false,
    });
    try {
      return await new Promise((resolve) =>
        socket.once('connect_error', (e: Error & { data?: unknown }) => resolve(e.data)),
      );
    } finally {
      socket.disconnect();
    }
  }

  it('refuses a protocol version mismatch and a malformed hello', async () => {
    const enrolled = (fleet.devices[0] as TestDevice).deviceId;
    expect(await connectError({ deviceId: enrolled, protocolVersion: '2.0' })).toEqual({
      code: 'VERSION_MISMATCH',
      message: 'protocol 2.0 is not supported',
    });
    expect(await connectError({ deviceId: 'bad id with spaces', protocolVersion: '1.0' })).toMatchObject({
      code: 'BAD_REQUEST',
    });
  });

  it('answers UNAUTHORIZED before the challenge is answered', async () => {
    const socket = io(fleet.tc.coordinator.url, {
      auth: { deviceId: (fleet.devices[0] as TestDevice).deviceId, protocolVersion: '1.0' },
      transports: ['websocket'],
      reconnection: false,
    });
    await new Promise((resolve) => socket.once('auth:challenge', resolve));
    const ack: unknown = await socket.timeout(PATIENCE_MS).emitWithAck('checkin', {
      taskId: 'test-task',
      eligibility: { charging: true, unmeteredNetwork: true, freeStorageBytes: 1e9, computeClass: 'low' },
      budget: { maxSeconds: 10, maxBytes: 1e7 },
      adapterVersion: 0,
    });
    expect(ack).toEqual({
      ok: false,
      error: { code: 'UNAUTHORIZED', message: 'answer auth:challenge first' },
    });
    socket.disconnect();
  });

  it('rate-limits one identity (burst 3 after the challenge, then 0.1 message/s), also across connections', async () => {
    const device = (await connectFleet(fleet.tc.coordinator, 1, 'rl'))[0] as TestDevice;
    fleet.devices.push(device);
    const codesOf = async (n: number) =>
      (await Promise.all(Array.from({ length: n }, () => device.checkIn('nope')))).map((a) =>
        a.ok ? 'OK' : a.error.code,
      );
    // auth:response drew on the connection's own pre-challenge bucket, not the identity's.
    const codes = await codesOf(5);
    expect(codes.filter((c) => c === 'NOT_FOUND')).toHaveLength(3);
    expect(codes.filter((c) => c === 'RATE_LIMITED')).toHaveLength(2);
    // Unknown events spend the same budget.
    const unknown = await device.emit('no:such-event', {});
    expect(unknown).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
    // A new connection of the same identity does not bring a fresh burst.
    device.disconnect();
    expect((await device.connect()).ok).toBe(true);
    expect(await codesOf(1)).toEqual(['RATE_LIMITED']);
    expect(fleet.tc.coordinator.stats.rateLimited).toBe(4);
  });
});
