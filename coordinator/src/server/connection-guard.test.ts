import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConnectionGuard } from './connection-guard.js';

/**
 * A guard keeping `maxPendingPerDevice` pending sockets and one authenticated socket per device,
 * with a 1 s challenge; `closed` lists `<socket>:<code>` in the order the guard closes them, and
 * `admit`/`authenticate` hand it a closer that records there.
 */
function guardWithLog(maxPendingPerDevice: number) {
  const guard = new ConnectionGuard({
    maxPendingPerDevice,
    maxAuthenticatedPerDevice: 1,
    authTimeoutMs: 1000,
  });
  const closed: string[] = [];
  const closer = (socketId: string) => (code: string) => closed.push(`${socketId}:${code}`);
  return {
    guard,
    closed,
    admit: (deviceId: string, socketId: string) => guard.admit(deviceId, socketId, closer(socketId)),
    authenticate: (deviceId: string, socketId: string) =>
      guard.authenticate(deviceId, socketId, closer(socketId)),
  };
}

describe('ConnectionGuard', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('keeps the newest 4 pending sockets of a device id and closes older ones', () => {
    const { guard, closed, admit } = guardWithLog(4);
    for (let i = 0; i < 10; i++) admit('d', `s${i}`);
    expect(closed).toEqual(['s0', 's1', 's2', 's3', 's4', 's5'].map((s) => `${s}:RATE_LIMITED`));
    expect(guard.count('d')).toEqual({ pending: 4, authenticated: 0 });
    // Other ids are not affected.
    admit('e', 'x');
    expect(guard.count('e')).toEqual({ pending: 1, authenticated: 0 });
    expect(guard.stats.evictedPending).toBe(6);
  });

  it('closes sockets that do not answer the challenge in time, and never authenticated ones', () => {
    const { guard, closed, admit, authenticate } = guardWithLog(4);
    admit('d', 'slow');
    admit('d', 'fast');
    authenticate('d', 'fast');
    vi.advanceTimersByTime(999);
    expect(closed).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(closed).toEqual(['slow:UNAUTHORIZED']);
    expect(guard.count('d')).toEqual({ pending: 0, authenticated: 1 });
    expect(guard.stats.authTimeouts).toBe(1);
  });

  it('keeps only the newest authenticated socket; pending floods never evict it', () => {
    const { guard, closed, admit, authenticate } = guardWithLog(2);
    admit('d', 'old');
    authenticate('d', 'old');
    for (let i = 0; i < 5; i++) admit('d', `f${i}`);
    expect(closed).not.toContain('old:RATE_LIMITED');
    authenticate('d', 'f4');
    expect(closed).toContain('old:RATE_LIMITED');
    expect(guard.count('d')).toEqual({ pending: 1, authenticated: 1 });
    guard.release('d', 'f4');
    guard.release('d', 'f3');
    expect(guard.count('d')).toEqual({ pending: 0, authenticated: 0 });
    // Released sockets' timers are gone.
    vi.advanceTimersByTime(5000);
    expect(closed.filter((c) => c.endsWith('UNAUTHORIZED'))).toEqual([]);
  });
});
