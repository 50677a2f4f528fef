import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNING_DOMAINS, signPayload } from '@flotilla/protocol';
import type { DashboardSnapshot } from '../src/server/dashboard/index.js';
import { loraDelta, OPERATOR_TOKEN, ProcessCluster, waitFor, type TestDevice } from './support/index.js';
import { parsePrometheusText, sampleValue } from './metrics-text-parser.js';

// A device whose ack was lost re-submits the identical signed update and hears DUPLICATE_UPDATE:
// its update was accepted. The dashboard and /metrics used to count that answer as a refusal.

const TASK = 'resubmit';
const ROUND = `${TASK}:1`;

describe('a re-submission after a lost ack is an acceptance (coordinator process)', () => {
  const cluster = new ProcessCluster('resubmit');
  let devices: TestDevice[] = [];

  beforeAll(async () => {
    await cluster.startCoordinator();
    await cluster.createTask(TASK, { rounds: { goalCount: 3, minReports: 2 } });
    devices = await cluster.enrollAndConnect('rs', 3);
  });
  afterAll(() => cluster.stop());

  it('counts it apart from refusals on the dashboard, in /metrics and in the round log', async () => {
    // Three devices selected for a goal of 3: the round stays open while two of them report.
    const [lossy, other] = devices as [TestDevice, TestDevice, TestDevice];
    const plan = await cluster.joinFirstRound(TASK, devices);

    // The ack is lost: the device never reads it, and its connection drops once the update is
    // stored. (Disconnecting right after the emit is a different case: socket.io drops an event
    // whose socket disconnected before the event was dispatched, which on a loaded machine is
    // when both frames arrive in one read; that update was never received, not accepted.)
    const blob = loraDelta(0.3);
    expect((await lossy.upload(blob)).status).toBe(201);
    const metadata = lossy.metadata(plan, blob);
    const signature = signPayload(SIGNING_DOMAINS.update, metadata, lossy.keys.secretKey);
    lossy.socket?.emit('update:submit', { metadata, signature }, () => undefined);
    await waitFor(
      async () => (await cluster.redis.hexists(cluster.keys.roundUpdates(ROUND), lossy.deviceId)) === 1,
      30_000,
      'the update stored',
    );
    lossy.socket?.disconnect();
    expect((await lossy.connect()).ok).toBe(true);
    expect(await lossy.emit('update:submit', { metadata, signature })).toMatchObject({
      ok: false,
      error: { code: 'DUPLICATE_UPDATE' },
    });
    // A different update from a device that already reported stays a refusal.
    const first = loraDelta(0.2);
    expect(await other.report(plan, first)).toMatchObject({ ok: true });
    expect(await other.report(plan, loraDelta(0.25))).toMatchObject({
      ok: false,
      error: { code: 'DUPLICATE_UPDATE' },
    });

    const metrics = parsePrometheusText(await (await fetch(`${cluster.url(0)}/metrics`)).text());
    expect(
      sampleValue(metrics, 'flotilla_updates_refused_total', { task: TASK, reason: 'DUPLICATE_UPDATE' }),
    ).toBe(1);
    expect(sampleValue(metrics, 'flotilla_updates_accepted_total', { task: TASK })).toBe(2);
    expect(sampleValue(metrics, 'flotilla_updates_resubmitted_total', { task: TASK })).toBe(1);

    const state = (await (
      await fetch(`${cluster.url(0)}/dashboard/api/state`, {
        headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
      })
    ).json()) as DashboardSnapshot;
    const round = state.tasks.find((t) => t.taskId === TASK)?.current;
    expect(round).toMatchObject({ accepted: 2, resubmitted: 1, refused: 1 });
    expect(round?.refusedByReason).toEqual({ DUPLICATE_UPDATE: 1 });

    const events = await cluster.events(ROUND);
    const refused = events.filter((e) => e.type === 'update.refused');
    expect(refused.map((e) => e.reason)).toEqual(['DUPLICATE_UPDATE']);
    expect(events.filter((e) => e.type === 'update.accepted')).toHaveLength(2);
  });
});
