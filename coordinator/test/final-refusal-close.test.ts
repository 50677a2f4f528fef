import { describe, expect, it } from 'vitest';
import { FINAL_UPDATE_REFUSALS, type RoundLogEventOf, type RoundPlan } from '@flotilla/protocol';
import { loraDelta, useTestFleet, type TestDevice } from './support/index.js';

// A device whose update is refused for a final reason (NORM_EXCEEDED: resending that update can
// never succeed) has answered: once every selected device answered, the round closes long before
// its deadline instead of waiting it out. A transient refusal (BLOB_MISSING: upload again) does
// not count, and a finally refused device that then sends a good update counts once, as accepted.

const DEADLINE_MS = 300_000;

describe('a round whose devices all answered, one with a final refusal', () => {
  const fleet = useTestFleet({
    task: { rounds: { goalCount: 3, overSelection: 1, minReports: 2, reportingDeadlineMs: DEADLINE_MS } },
    taskAfterDevices: true,
    devices: 3,
    label: 'final',
  });

  it('classifies the refusals it relies on', () => {
    expect(FINAL_UPDATE_REFUSALS.NORM_EXCEEDED).toBe(true);
    expect(FINAL_UPDATE_REFUSALS.BAD_SIGNATURE).toBe(true);
    expect(FINAL_UPDATE_REFUSALS.BLOB_MISSING).toBe(false);
    expect(FINAL_UPDATE_REFUSALS.RATE_LIMITED).toBe(false);
  });

  it('closes as all-answered before its deadline, and the log verifies', async () => {
    const [d0, d1, d2] = fleet.devices as [TestDevice, TestDevice, TestDevice];
    const roundId = 'test-task:1';
    const plans = (await fleet.joinRound('test-task', roundId)) as [RoundPlan, RoundPlan, RoundPlan];
    const round = () => fleet.tc.coordinator.rounds.get(roundId);

    expect((await d0.report(plans[0], loraDelta(0.2))).ok).toBe(true);
    // Clip bound 1: a norm of 3 is refused, and d1 counts as answered.
    expect(await d1.report(plans[1], loraDelta(3))).toMatchObject({ error: { code: 'NORM_EXCEEDED' } });
    expect(await round()).toMatchObject({ state: 'REPORTING', acceptedCount: 1, finalRefusedCount: 1 });

    // d1 sends a good update after all: it counts once, as accepted (1 + 1 + 1 would close the round).
    expect((await d1.report(plans[1], loraDelta(0.3))).ok).toBe(true);
    expect(await round()).toMatchObject({ state: 'REPORTING', acceptedCount: 2, finalRefusedCount: 0 });

    // A blob not uploaded is a refusal the device gets past by uploading: d2 has not answered.
    const unsent = loraDelta(0.4);
    expect(await d2.submit(d2.metadata(plans[2], unsent))).toMatchObject({ error: { code: 'BLOB_MISSING' } });
    expect(await round()).toMatchObject({ state: 'REPORTING', finalRefusedCount: 0 });

    // d2's final refusal is the last answer: the round closes at once.
    expect(await d2.report(plans[2], loraDelta(2))).toMatchObject({ error: { code: 'NORM_EXCEEDED' } });
    await fleet.roundIn(roundId, 'AGGREGATING');
    const records = await fleet.roundLogWhen('round.closed', (log) =>
      log.some((r) => r.event.type === 'round.closed'),
    );
    const closing = records.find((r) => r.event.type === 'round.closed');
    const closed = closing?.event as RoundLogEventOf<'round.closed'>;
    expect(closed).toMatchObject({ accepted: 2, refused: 3, minReports: 2, reason: 'all-answered' });
    // The deadline is five minutes after the plan: the close came from the answers, not from it.
    expect(closing?.ts).toBeLessThan(plans[2].deadline);
    expect((await fleet.roundLogVerdict()).problems).toEqual([]);
  });
});
