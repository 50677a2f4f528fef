import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConnectionGuard } from './connection-guard.js';

function closer(log: string[], id: string) {
  return (code: string) => log.push(`${id}:${code}`);
}

describe('ConnectionGuard', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('keeps the newest 4 pending sockets of a device id and closes older ones', () => {
    const guard = new ConnectionGuard({
      maxPendingPerDevice: 4,
      maxAuthenticatedPerDevice: 1,
      authTimeoutMs: 1000,
    });
    const closed: string[] = [];
    for (let i = 0; i < 10; i++) guard.admit('d', `s${i}`, closer(closed, `s${i}`));
    expect(closed).toEqual(['s0', 's1', 's2', 's3', 's4', 's5'].map((s) => `${s}:RATE_LIMITED`));
    expect(guard.count('d')).toEqual({ pending: 4, authenticated: 0 });
    // Other ids are not affected.
    guard.admit('e', 'x', closer(closed, 'x'));
    expect(guard.count('e')).toEqual({ pending: 1, authenticated: 0 });
    expect(guard.stats.evictedPending).toBe(6);
  });

  it('closes sockets that do not answer the challenge in time, and never authenticated ones', () => {
    const guard = new ConnectionGuard({
      maxPendingPerDevice: 4,
      maxAuthenticatedPerDevice: 1,
      authTimeoutMs: 1000,
    });
    const closed: string[] = [];
    guard.admit('d', 'slow', closer(closed, 'slow'));
    guard.admit('d', 'fast', closer(closed, 'fast'));
    guard.authenticate('d', 'fast', closer(closed, 'fast'));
    vi.advanceTimersByTime(999);
    expect(closed).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(closed).toEqual(['slow:UNAUTHORIZED']);
    expect(guard.count('d')).toEqual({ pending: 0, authenticated: 1 });
    expect(guard.stats.authTimeouts).toBe(1);
  });

  it('keeps only the newest authenticated socket; pending floods never evict it', () => {
    const guard = new ConnectionGuard({
      maxPendingPerDevice: 2,
      maxAuthenticatedPerDevice: 1,
      authTimeoutMs: 1000,
    });
    const closed: string[] = [];
    guard.admit('d', 'old', closer(closed, 'old'));
    guard.authenticate('d', 'old', closer(closed, 'old'));
    for (let i = 0; i < 5; i++) guard.admit('d', `f${i}`, closer(closed, `f${i}`));
    expect(closed).not.toContain('old:RATE_LIMITED');
    guard.authenticate('d', 'f4', closer(closed, 'f4'));
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
