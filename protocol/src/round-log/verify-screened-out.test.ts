import { describe, expect, it } from 'vitest';
import type { RoundLogEvent, RoundLogEventOf } from './events.js';
import { screenedOutIndices } from './screened-out.js';
import {
  accepted,
  aggregation,
  audit,
  closed,
  opened,
  problemsOf,
  promotion,
  selected,
  verifyEvents,
} from '../../test/support/round-log-fixtures.js';

// A task with `audit.excludeFlagged` leaves the updates its drift screen flags out of the
// aggregate: the aggregation record keeps them as participants weighing 0 and names their
// indices in `strategyOptions.screenedOut`. A key holder who signs a screened-out participant
// with a weight, or names a participant the record does not have, is caught at that record.

/** One promoted round without DP whose third participant was screened out. */
function screenedRound(change: (e: RoundLogEventOf<'aggregation'>) => RoundLogEventOf<'aggregation'>) {
  const agg = aggregation(1, [1, 2, 3], { epsilon: null });
  const honest: RoundLogEventOf<'aggregation'> = {
    ...agg,
    strategy: 'median',
    strategyOptions: { screenedOut: '2' },
    participants: agg.participants.map((p, i) => ({ ...p, weight: i === 2 ? 0 : 100 })),
  };
  const events: RoundLogEvent[] = [
    opened(1, { dp: null }),
    selected(1, [1, 2, 3]),
    accepted(1, 1, { norm: 0.5 }),
    accepted(1, 2, { norm: 0.5 }),
    accepted(1, 3, { norm: 0.5 }),
    closed(1, { accepted: 3 }),
    change(honest),
    audit(1, 'pass'),
    promotion(1, 1),
  ];
  return problemsOf(verifyEvents(events));
}

describe('screened-out participants in the round log', () => {
  it('parses the indices, and refuses what names no participant', () => {
    expect(screenedOutIndices(undefined, 3)).toEqual([]);
    expect(screenedOutIndices('0,2', 3)).toEqual([0, 2]);
    expect(screenedOutIndices('3', 3)).toBeNull();
    expect(screenedOutIndices('', 3)).toBeNull();
    expect(screenedOutIndices('1,,2', 3)).toBeNull();
    expect(screenedOutIndices(2, 3)).toBeNull();
  });

  it('an honest log verifies', () => {
    expect(screenedRound((e) => e)).toEqual([]);
  });

  it('a screened-out participant that weighs something', () => {
    const weighed = screenedRound((e) => ({
      ...e,
      participants: e.participants.map((p) => ({ ...p, weight: 100 })),
    }));
    expect(weighed).toEqual([[6, 'COUNTS']]);
  });

  it('a screenedOut naming a participant the record does not have', () => {
    expect(screenedRound((e) => ({ ...e, strategyOptions: { screenedOut: '5' } }))).toEqual([[6, 'COUNTS']]);
  });
});
