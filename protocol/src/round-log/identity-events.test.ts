import { describe, expect, it } from 'vitest';
import type { RoundLogEventOf } from './events.js';
import { summarizeRoundLog } from './summary.js';
import {
  accepted,
  aggregation,
  closed,
  dev,
  digest,
  opened,
  problemsOf,
  refused,
  roundOf,
  selected,
  signedLog,
  TASK,
  verifyEvents,
} from '../../test/support/index.js';

// The coordinator's records for revocation (update.excluded) and for bounded refusal logging
// (update.refusals): how the verifier and the summary read them.

function excluded(n: number, device: number): RoundLogEventOf<'update.excluded'> {
  return {
    type: 'update.excluded',
    taskId: TASK,
    roundId: roundOf(n),
    device: dev(device),
    blobDigest: digest(1000 * n + device),
    reason: 'REVOKED_DEVICE',
    message: 'the device was revoked while the round was open',
  };
}

function refusals(n: number, counts: Array<[number, string, number]>): RoundLogEventOf<'update.refusals'> {
  return {
    type: 'update.refusals',
    taskId: TASK,
    roundId: roundOf(n),
    counts: counts.map(([device, reason, count]) => ({ device: dev(device), reason, count })),
  };
}

const roundWithExclusion = [
  opened(1, { dp: null }),
  selected(1, [1, 2, 3]),
  accepted(1, 1, { norm: 0.5 }),
  accepted(1, 2, { norm: 0.5 }),
  accepted(1, 3, { norm: 0.5 }),
  excluded(1, 3),
  closed(1, { accepted: 2 }, 'deadline'),
];

describe('update.excluded and update.refusals in the round log', () => {
  it('lets an aggregation use the remaining updates, and flags one that uses the excluded blob', () => {
    expect(verifyEvents([...roundWithExclusion, aggregation(1, [1, 2], { epsilon: null })]).ok).toBe(true);
    const withExcluded = verifyEvents([...roundWithExclusion, aggregation(1, [1, 3], { epsilon: null })]);
    expect(problemsOf(withExcluded)).toEqual([[7, 'UNKNOWN_PARTICIPANT']]);
    const summary = summarizeRoundLog(signedLog(roundWithExclusion)).rounds[0];
    expect(summary).toMatchObject({ accepted: 2, excluded: 1 });
  });

  it('adds counted repeats to the logged refusals', () => {
    const events = [
      opened(1, { dp: null }),
      selected(1, [1, 2]),
      refused(1, 4, 'NOT_SELECTED', true),
      refused(1, 4, 'NONCE_MISMATCH', true),
      refusals(1, [
        [4, 'NOT_SELECTED', 10],
        [4, 'NONCE_MISMATCH', 2],
      ]),
      refusals(1, [[4, 'NOT_SELECTED', 5]]),
    ];
    expect(verifyEvents(events).ok).toBe(true);
    expect(summarizeRoundLog(signedLog(events)).rounds[0]?.refusedByReason).toEqual({
      NOT_SELECTED: 16,
      NONCE_MISMATCH: 3,
    });
    // A count record is a record of the round like any other: not before the round opened.
    expect(problemsOf(verifyEvents([refusals(1, [[4, 'NOT_SELECTED', 1]]), ...events]))[0]).toEqual([
      0,
      'UNKNOWN_ROUND',
    ]);
  });
});
