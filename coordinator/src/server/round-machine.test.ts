import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  ROUND_STATES,
  ROUND_TRANSITIONS,
  TERMINAL_STATES,
  canMove,
  sourcesOf,
  takesResponses,
  type RoundState,
  type SourceState,
} from './round-machine.js';
import type { RoundStore } from './round-store.js';

describe('round state machine', () => {
  it('has the moves of the round in DESIGN.md (after Bonawitz et al. 2019)', () => {
    // SELECTING -> CONFIGURING -> REPORTING -> AGGREGATING -> COMMITTED | REJECTED, and
    // ABANDONED from each of the first three.
    const moves = ROUND_STATES.flatMap((from) =>
      ROUND_STATES.filter((to) => canMove(from, to)).map((to) => `${from}>${to}`),
    );
    expect(moves.sort()).toEqual(
      [
        'SELECTING>CONFIGURING',
        'SELECTING>ABANDONED',
        'CONFIGURING>REPORTING',
        'CONFIGURING>ABANDONED',
        'REPORTING>AGGREGATING',
        'REPORTING>ABANDONED',
        'AGGREGATING>COMMITTED',
        'AGGREGATING>REJECTED',
      ].sort(),
    );
  });

  it('has one row per state', () => {
    expect(Object.keys(ROUND_TRANSITIONS)).toEqual([...ROUND_STATES]);
  });

  it('derives the terminal states and the sources of a move from the table', () => {
    expect(TERMINAL_STATES).toEqual(['COMMITTED', 'REJECTED', 'ABANDONED']);
    expect(sourcesOf('ABANDONED')).toEqual(['SELECTING', 'CONFIGURING', 'REPORTING']);
    expect(sourcesOf('COMMITTED')).toEqual(['AGGREGATING']);
    expect(sourcesOf('SELECTING')).toEqual([]);
  });

  it('takes responses only in REPORTING', () => {
    expect(ROUND_STATES.filter((state) => takesResponses({ state }))).toEqual(['REPORTING']);
  });

  it('types every move against the table', () => {
    expectTypeOf<keyof typeof ROUND_TRANSITIONS>().toEqualTypeOf<RoundState>();
    expectTypeOf<SourceState<'ABANDONED'>>().toEqualTypeOf<'SELECTING' | 'CONFIGURING' | 'REPORTING'>();
    expectTypeOf<SourceState<'COMMITTED' | 'REJECTED'>>().toEqualTypeOf<'AGGREGATING'>();
    expectTypeOf<SourceState<'SELECTING'>>().toEqualTypeOf<never>();
    // Never called: `npm run typecheck` checks that the store compiles only the table's moves.
    const moves = (store: RoundStore) => [
      store.transition('t:1', ['SELECTING'], 'CONFIGURING'),
      store.transition('t:1', ['AGGREGATING'], 'REJECTED'),
      // @ts-expect-error SELECTING cannot move straight to COMMITTED
      store.transition('t:1', ['SELECTING'], 'COMMITTED'),
      // @ts-expect-error no move leaves a terminal state
      store.transition('t:1', ['ABANDONED'], 'SELECTING'),
      // @ts-expect-error one source that may not make the move is enough to refuse the call
      store.transition('t:1', ['REPORTING', 'AGGREGATING'], 'ABANDONED'),
    ];
    expect(moves).toBeTypeOf('function');
  });
});
