import { describe, expect, it } from 'vitest';
import type { RoundRecord } from '@flotilla/coordinator/server';
import type { SimEnvironment } from './sim-environment.js';
import { watchRound } from './watch-round.js';

// Unit test of watchRound alone: the coordinator's round store is replaced by a scripted one.
// The coordinator keeps a round nobody checked in to open past its selection timeout (it moves
// the selection deadline on); an offline round of the schedule must end there, not stall.

function record(over: Partial<RoundRecord>): RoundRecord {
  return {
    roundId: 't:1',
    taskId: 't',
    roundNumber: 1,
    state: 'SELECTING',
    nonce: 'n',
    openedAt: 0,
    selectionDeadline: 1000,
    goalCount: 2,
    minReports: 1,
    acceptWindowMs: 0,
    targetSelect: 2,
    minSelect: 1,
    acceptedCount: 0,
    skippedCount: 0,
    finalRefusedCount: 0,
    selectedCount: 0,
    ...over,
  };
}

function scriptedEnv(states: RoundRecord[]): { env: SimEnvironment; reads: () => number } {
  let reads = 0;
  const next = () => states[Math.min(reads++, states.length - 1)] as RoundRecord;
  const rounds = {
    current: () => Promise.resolve(states[0] ?? null),
    get: () => Promise.resolve(next()),
    waiting: () => Promise.resolve([]),
  };
  return { env: { taskId: 't', coordinator: { rounds } } as unknown as SimEnvironment, reads: () => reads };
}

describe('watching an offline round', () => {
  it('returns the round still SELECTING once its selection deadline moved on', async () => {
    const { env, reads } = scriptedEnv([
      record({}),
      record({}),
      record({ selectionDeadline: 2000 }),
      record({ state: 'ABANDONED' }),
    ]);
    const round = await watchRound({
      env,
      previousRoundId: null,
      round: 1,
      scheduled: [],
      devices: new Map(),
      offline: true,
      stallTimeoutMs: 10_000,
    });
    expect(round).toMatchObject({ roundId: 't:1', state: 'SELECTING', selectionDeadline: 2000 });
    expect(reads()).toBe(3);
  });

  it('keeps waiting for a decision when the round is not offline', async () => {
    const { env } = scriptedEnv([
      record({}),
      record({ selectionDeadline: 2000 }),
      record({ state: 'ABANDONED', reason: 'selection timeout: 1 of 2 devices checked in' }),
    ]);
    const round = await watchRound({
      env,
      previousRoundId: null,
      round: 1,
      scheduled: ['d1'],
      devices: new Map(),
      stallTimeoutMs: 10_000,
    });
    expect(round.state).toBe('ABANDONED');
  });
});
