import { describe, expect, it } from 'vitest';
import {
  abandoned,
  accepted,
  opened,
  problemsOf,
  refused,
  roundOf,
  selected,
  TASK,
  verifyEvents,
} from '../../test/support/index.js';

// Rounds that end before they are opened, and the order in which a task's rounds begin.

describe('a round abandoned before any plan', () => {
  it('verifies as the only record of its round (selection timeout with nobody checked in)', () => {
    const result = verifyEvents([
      abandoned(1, 0, 'selection timeout: 0 of 3 devices checked in'),
      abandoned(2, 0, 'selection timeout: 1 of 3 devices checked in'),
      opened(3),
      selected(3, [1, 2, 3]),
      accepted(3, 1),
      abandoned(3, 1, 'quorum missed: 1 of 2 updates'),
    ]);
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
  });

  it('cannot claim accepted updates without having been opened', () => {
    expect(problemsOf(verifyEvents([abandoned(1, 2)]))).toEqual([[0, 'UNKNOWN_ROUND']]);
  });

  it('admits no later event of that round', () => {
    expect(problemsOf(verifyEvents([abandoned(1, 0), opened(1)]))).toEqual([[1, 'DUPLICATE_ROUND']]);
    expect(problemsOf(verifyEvents([abandoned(1, 0), refused(1, 4)]))).toEqual([[1, 'ROUND_STATE']]);
    expect(problemsOf(verifyEvents([abandoned(1, 0), abandoned(1, 0)]))).toEqual([[1, 'ROUND_STATE']]);
  });
});

describe('the rounds of a task begin in increasing order', () => {
  it('a round number that does not increase fails where it begins', () => {
    expect(problemsOf(verifyEvents([opened(2), abandoned(2, 0, 'x'), opened(1)]))).toEqual([
      [2, 'ROUND_STATE'],
    ]);
    expect(problemsOf(verifyEvents([opened(2), abandoned(2, 0, 'x'), abandoned(1, 0)]))).toEqual([
      [2, 'ROUND_STATE'],
    ]);
  });

  it('numbers may skip (a round the log never saw opened is not invented)', () => {
    expect(verifyEvents([opened(1), abandoned(1, 0, 'x'), opened(5)]).ok).toBe(true);
  });

  it('a round id of another task fails', () => {
    expect(problemsOf(verifyEvents([opened(1, { roundId: `other-${TASK}:1` })]))).toEqual([
      [0, 'UNKNOWN_ROUND'],
    ]);
    expect(roundOf(1)).toBe(`${TASK}:1`);
  });
});
