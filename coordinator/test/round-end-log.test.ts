import { describe, expect, it } from 'vitest';
import { sha256Hex, type RoundLogEventOf, type RoundPlan } from '@flotilla/protocol';
import type { AcceptedUpdate } from '../src/server/accepted-update.js';
import { loadOrCreatePseudonymSecret, pseudonymizeDevice } from '../src/shared/round-log/index.js';
import { loraDelta, useTestFleet, type TestDevice } from './support/index.js';

// A round's end in the log counts what the log holds before it: every accepted update (one a
// coordinator process stored but died before logging is logged by the round's closer), every
// refusal while it was open; and it says why reporting ended. Here: one update accepted over
// the socket, one stored by "a process that died before logging it", one refusal, one skip.

describe("a round's end in the round log", () => {
  const fleet = useTestFleet({
    task: {
      // Closes once every device answered: the deadline only bounds a failure.
      rounds: { goalCount: 3, overSelection: 1, minReports: 2, reportingDeadlineMs: 300_000 },
    },
    taskAfterDevices: true,
    devices: 3,
    label: 'end',
  });

  it('logs the acceptance its process never logged, and counts and explains the close', async () => {
    const [d0, d1, d2] = fleet.devices as [TestDevice, TestDevice, TestDevice];
    const roundId = 'test-task:1';
    const plans = await fleet.joinRound('test-task', roundId);
    expect((await d0.report(plans[0] as RoundPlan, loraDelta(0.2))).ok).toBe(true);

    // d1's update is stored and counted, as by a process that then died before logging it.
    const bytes = loraDelta(0.3);
    const secret = await loadOrCreatePseudonymSecret(fleet.tc.stateDir);
    const stored: AcceptedUpdate = {
      updateId: 'lost-log-1',
      deviceId: d1.deviceId,
      devicePseudonym: pseudonymizeDevice(secret, d1.deviceId),
      blobDigest: sha256Hex(bytes),
      blobBytes: bytes.length,
      numExamples: 12,
      norm: 0.3,
      reportedNorm: 0.3,
      clipped: false,
      quantization: 'none',
      signature: 'not-checked-here',
      acceptedAt: Date.now(),
    };
    expect(
      await fleet.tc.coordinator.rounds.accept(roundId, d1.deviceId, JSON.stringify(stored), Date.now()),
    ).toEqual({
      status: 'OK',
      count: 2,
    });

    // d2 is refused once (a blob it never uploaded: it could upload and resend, so it has not
    // answered yet), then skips: every selected device answered.
    const refused = await d2.submit(d2.metadata(plans[2] as RoundPlan, loraDelta(3)));
    expect(refused).toMatchObject({ ok: false, error: { code: 'BLOB_MISSING' } });
    expect(await d2.emit('update:skip', { roundId, reason: 'validation-gate', detail: 'worse' })).toEqual({
      ok: true,
      data: { recorded: true },
    });
    const records = await fleet.roundLogWhen('round.closed', (log) =>
      log.some((r) => r.event.type === 'round.closed'),
    );
    const ofRound = records.filter((r) => 'roundId' in r.event && r.event.roundId === roundId);
    expect(ofRound.map((r) => r.event.type)).toEqual([
      'round.opened',
      'round.selected',
      'update.accepted',
      'update.refused',
      'update.accepted',
      'round.closed',
    ]);
    expect(ofRound[4]?.event).toMatchObject({
      device: stored.devicePseudonym,
      blobDigest: stored.blobDigest,
    });
    const closed = ofRound[5]?.event as RoundLogEventOf<'round.closed'>;
    expect(closed).toMatchObject({ accepted: 2, refused: 1, minReports: 2, reason: 'all-answered' });
    expect((await fleet.roundLogVerdict()).problems).toEqual([]);
  });
});
