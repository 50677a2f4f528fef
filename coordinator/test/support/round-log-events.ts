import type { RoundLogEventOf } from '@flotilla/protocol';

/**
 * The `round.opened` record of round `n` (from 1) of `taskId`, for tests that append to a round log
 * directly: no DP, goal 2, quorum 1. Rounds of one task must open in increasing order.
 */
export function roundOpened(n: number, taskId = 'demo'): RoundLogEventOf<'round.opened'> {
  return {
    type: 'round.opened',
    taskId,
    roundId: `${taskId}:${n}`,
    goalCount: 2,
    minReports: 1,
    clipNorm: 1,
    parentVersion: 0,
    deadline: 1,
    dp: null,
  };
}

/** The `round.abandoned` record of round `n` of `taskId` when selection timed out (no plan, so no `round.opened`). */
export function roundAbandonedInSelection(n: number, taskId = 'demo'): RoundLogEventOf<'round.abandoned'> {
  return {
    type: 'round.abandoned',
    taskId,
    roundId: `${taskId}:${n}`,
    accepted: 0,
    minReports: 1,
    reason: 'selection timeout: 0 of 2 devices checked in',
  };
}

/**
 * The `update.refused` record of the `i`-th device (pseudonym `dev_<i in hex>`) in round `demo:1`,
 * over the norm bound: a record per device, for filling a log with many leaves.
 */
export function updateRefused(i: number): RoundLogEventOf<'update.refused'> {
  return {
    type: 'update.refused',
    taskId: 'demo',
    roundId: 'demo:1',
    device: `dev_${i.toString(16).padStart(32, '0')}`,
    reason: 'NORM_EXCEEDED',
    message: `norm ${2 + i} > 1`,
    blobDigest: (i + 1).toString(16).padStart(64, '0'),
    norm: null,
    clipBound: 1,
    clipped: null,
    bytes: null,
  };
}
