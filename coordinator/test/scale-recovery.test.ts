import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { uniquePrefix } from '../../test-support/redis.js';
import {
  createTestTask,
  loraDelta,
  startSwitchProxy,
  startTestCoordinator,
  TestDevice,
  waitFor,
} from './support/index.js';
import type { SwitchProxy, TestCoordinator } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

// Two coordinators (one Redis, one prefix) behind a switchable proxy standing in for a load
// balancer. A device's connection is cut while a round closes; its reconnect lands on the other
// coordinator. With connection-state recovery on, the redis streams adapter restores the session
// there and replays the `round:closed` broadcast it missed; with it off, the broadcast is gone.
describe('connection-state recovery across coordinators (redis streams adapter)', () => {
  let stops: Array<() => Promise<void> | void> = [];

  afterEach(async () => {
    for (const stop of stops.reverse()) await stop();
    stops = [];
  });

  async function cutDuringRoundClose(recoveryWindowMs: number) {
    const prefix = uniquePrefix('recovery');
    const stateDir = mkdtempSync(join(tmpdir(), 'flotilla-recovery-'));
    stops.push(() => rmSync(stateDir, { recursive: true, force: true }));
    const start = async (): Promise<TestCoordinator> => {
      const tc = await startTestCoordinator({ prefix, stateDir, recoveryWindowMs });
      stops.push(() => tc.coordinator.close());
      return tc;
    };
    const [a, b] = [await start(), await start()];
    const proxy: SwitchProxy = await startSwitchProxy(a.coordinator.port);
    stops.push(() => proxy.close());
    await createTestTask(a.coordinator, { rounds: { goalCount: 1, minReports: 1 } });

    const watcher = new TestDevice(proxy.url, 'watcher-1');
    const reporter = new TestDevice(b.coordinator.url, 'reporter-2');
    for (const d of [watcher, reporter])
      await a.coordinator.devices.registerDevice({ deviceId: d.deviceId, publicKey: d.publicKey });
    expect(await watcher.connect({ reconnection: true })).toMatchObject({ ok: true });
    expect(await reporter.connect()).toMatchObject({ ok: true });
    stops.push(() => {
      watcher.disconnect();
      reporter.disconnect();
    });
    const firstSession = watcher.session?.sessionToken;
    const socket = watcher.socket;
    if (!socket) throw new Error('watcher has no socket');

    expect(await reporter.checkIn('test-task')).toMatchObject({ ok: true });
    const plan = await reporter.waitForPlan(undefined, PATIENCE_MS);

    // Cut the watcher off, close the round while it is away, then let it reconnect to b.
    proxy.down();
    await waitFor(() => !socket.connected, PATIENCE_MS, 'the watcher to notice the cut');
    expect(await reporter.report(plan, loraDelta(0.5))).toMatchObject({ ok: true });
    await waitFor(() => reporter.closed.some((c) => c.roundId === plan.roundId), PATIENCE_MS, 'round:closed');
    expect(watcher.closed.some((c) => c.roundId === plan.roundId)).toBe(false);
    proxy.route(b.coordinator.port);
    await waitFor(() => socket.connected, PATIENCE_MS, 'the watcher to reconnect through the proxy');
    // Recovered or not, the socket answers a fresh challenge on b before it may act.
    await waitFor(
      () => watcher.session !== null && watcher.session.sessionToken !== firstSession,
      PATIENCE_MS,
      'a new session on b',
    );
    const checkIn = await watcher.checkIn('test-task');
    return {
      recovered: socket.recovered === true,
      missedClose: watcher.closed.some((c) => c.roundId === plan.roundId),
      checkIn,
    };
  }

  it('with a recovery window, the session moves to the other coordinator with the broadcast it missed', async () => {
    const result = await cutDuringRoundClose(30_000);
    expect(result.recovered).toBe(true);
    expect(result.missedClose).toBe(true);
    expect(result.checkIn).toMatchObject({ ok: true });
  });

  it('without one (the default), the device reconnects and authenticates but the broadcast is lost', async () => {
    const result = await cutDuringRoundClose(0);
    expect(result.recovered).toBe(false);
    expect(result.missedClose).toBe(false);
    expect(result.checkIn).toMatchObject({ ok: true });
  });

  it("closing one coordinator leaves the other's devices connected", async () => {
    const prefix = uniquePrefix('recovery');
    const stateDir = mkdtempSync(join(tmpdir(), 'flotilla-recovery-'));
    stops.push(() => rmSync(stateDir, { recursive: true, force: true }));
    const a = await startTestCoordinator({ prefix, stateDir });
    const b = await startTestCoordinator({ prefix, stateDir });
    stops.push(() => b.coordinator.close());
    const device = new TestDevice(b.coordinator.url, 'stays-3');
    await b.coordinator.devices.registerDevice({ deviceId: device.deviceId, publicKey: device.publicKey });
    expect(await device.connect()).toMatchObject({ ok: true });
    stops.push(() => device.disconnect());
    const reasons: string[] = [];
    device.socket?.on('disconnect', (reason) => reasons.push(reason));
    // A disconnect of "all sockets" that went through the cluster adapter would reach b's too.
    await a.coordinator.close();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(reasons).toEqual([]);
    expect(await device.checkIn('no-such-task')).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND' },
    });
  });
});
