import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { RoundPlan } from '@flotilla/protocol';
import { loraDelta, useTestFleet, waitFor, type TestDevice } from './support/index.js';
import { PATIENCE_MS, WAITED_DEADLINE_MS } from '../../test-support/patience.js';

/** Short enough to tell from the 7-day default, long enough not to expire during the test. */
const RETENTION_MS = 10 * 60 * 1000;

describe('quorum missed', () => {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const fleet = useTestFleet({
    coordinator: { logger: pino({ level: 'info' }, sink), roundRetentionMs: RETENTION_MS },
    task: {
      rounds: {
        goalCount: 3,
        overSelection: 1,
        minReports: 2,
        reportingDeadlineMs: WAITED_DEADLINE_MS,
        selectionTimeoutMs: 1000,
        maxRounds: 3,
      },
    },
    devices: 3,
    label: 'q',
  });

  it('abandons a round below minReports at the deadline, logs it, and opens the next round', async () => {
    await Promise.all(fleet.devices.map((d) => d.checkIn('test-task')));
    const plans = await Promise.all(fleet.devices.map((d) => d.waitForPlan()));
    const [d0, d1] = fleet.devices as [TestDevice, TestDevice];
    expect((await d0.report(plans[0] as RoundPlan, loraDelta(0.2))).ok).toBe(true);
    expect(
      await d1.emit('update:skip', {
        roundId: 'test-task:1',
        reason: 'validation-gate',
        detail: 'holdout got worse',
      }),
    ).toEqual({
      ok: true,
      data: { recorded: true },
    });
    const round = await fleet.roundIn('test-task:1', 'ABANDONED');
    expect(round.reason).toBe('quorum missed: 1 of 2 updates');
    await waitFor(() => d0.closed.length > 0, PATIENCE_MS, 'round:closed');
    expect(d0.closed[0]).toEqual({
      roundId: 'test-task:1',
      taskId: 'test-task',
      state: 'ABANDONED',
      reason: 'quorum missed: 1 of 2 updates',
    });
    expect(lines.some((l) => l.roundId === 'test-task:1' && l.msg === 'round abandoned')).toBe(true);
    expect(
      lines.some(
        (l) =>
          l.roundId === 'test-task:1' &&
          (l.event as { type?: string } | undefined)?.type === 'round.abandoned',
      ),
    ).toBe(true);
    await waitFor(
      async () => (await fleet.tc.coordinator.rounds.current('test-task'))?.roundId === 'test-task:2',
      PATIENCE_MS,
      'next round',
    );
  });

  it('abandons a round whose selection times out short of devices, keeps an idle one open, and stops at maxRounds', async () => {
    const abandoned = (roundId: string) => fleet.roundIn(roundId, 'ABANDONED');
    const d0 = fleet.devices[0] as TestDevice;
    await waitFor(
      async () => (await fleet.tc.coordinator.rounds.get('test-task:2'))?.state,
      PATIENCE_MS,
      'round 2',
    );
    await d0.checkIn('test-task');
    expect((await abandoned('test-task:2')).reason).toBe('selection timeout: 1 of 3 devices checked in');

    // Round 3 outlives its selection timeout with nobody checked in: it stays open, uncounted.
    await fleet.selectionKeptOpen('test-task:3');
    expect((await fleet.tc.coordinator.rounds.get('test-task:3'))?.state).toBe('SELECTING');
    expect(
      lines.some(
        (l) => l.roundId === 'test-task:3' && String(l.msg).includes('not counted against maxRounds'),
      ),
    ).toBe(true);
    await d0.checkIn('test-task');
    await abandoned('test-task:3');
    await new Promise((r) => setTimeout(r, 300));
    expect((await fleet.tc.coordinator.rounds.current('test-task'))?.roundId).toBe('test-task:3');
    const checkin = await d0.checkIn('test-task');
    expect(checkin.ok && checkin.data).toMatchObject({ status: 'retry', reason: 'no-open-round' });
  });

  it('gives decided rounds the retention expiry once the next round opens, never the current one', async () => {
    const { redis, keys } = fleet.tc.coordinator;
    const ttls = async (roundId: string): Promise<number[]> =>
      Promise.all(
        [keys.round, keys.roundWaiting, keys.roundSelected, keys.roundUpdates, keys.roundSkips].map((key) =>
          redis.pttl(key(roundId)),
        ),
      );
    // Round 1 had check-ins, a selection, an update and a skip: all five keys exist and expire.
    for (const ttl of await ttls('test-task:1')) {
      expect(ttl).toBeGreaterThan(RETENTION_MS - 60_000);
      expect(ttl).toBeLessThanOrEqual(RETENTION_MS);
    }
    expect(await redis.pttl(keys.round('test-task:2'))).toBeGreaterThan(0);
    // The task's latest round has no expiry (-1): a restart must always find it.
    expect(await redis.pttl(keys.round('test-task:3'))).toBe(-1);
    expect(await redis.pttl(keys.currentRound('test-task'))).toBe(-1);
  });
});
