// The round state machine of DESIGN.md ("The round"), written once. The states and the moves
// between them are data: `RoundStore.transition` only compiles for a move listed in
// ROUND_TRANSITIONS, so a new state is one row here and the compiler then names every place that
// must learn about it. The Lua scripts in round-scripts/ do the moves atomically in Redis.
//
//   SELECTING -> CONFIGURING -> REPORTING -> AGGREGATING -> COMMITTED | REJECTED
//       \______________\____________\________> ABANDONED (quorum not met / fault)

export const ROUND_STATES = [
  'SELECTING',
  'CONFIGURING',
  'REPORTING',
  'AGGREGATING',
  'COMMITTED',
  'REJECTED',
  'ABANDONED',
] as const;
export type RoundState = (typeof ROUND_STATES)[number];

/** Every state a round may move to from each state; a state with none is terminal. */
export const ROUND_TRANSITIONS = {
  /** Enough devices checked in: the round is planned; too few by the selection timeout: abandoned. */
  SELECTING: ['CONFIGURING', 'ABANDONED'],
  /** The plan is stored and sent to the selected devices (a restart here abandons the round). */
  CONFIGURING: ['REPORTING', 'ABANDONED'],
  /** Closed with quorum for aggregation, or abandoned without it. */
  REPORTING: ['AGGREGATING', 'ABANDONED'],
  /** The worker's decision, applied by the driving coordinator (round-decision.ts). */
  AGGREGATING: ['COMMITTED', 'REJECTED'],
  COMMITTED: [],
  REJECTED: [],
  ABANDONED: [],
} as const satisfies Record<RoundState, readonly RoundState[]>;

/** The states a round in `From` may move to. */
export type NextState<From extends RoundState> = (typeof ROUND_TRANSITIONS)[From][number];

/** The states from which a round may move to `To` (to every member of it, when `To` is a union). */
export type SourceState<To extends RoundState> = {
  [From in RoundState]: [To] extends [NextState<From>] ? From : never;
}[RoundState];

/** True when the table allows `from` -> `to`. */
export function canMove(from: RoundState, to: RoundState): boolean {
  const next: readonly RoundState[] = ROUND_TRANSITIONS[from];
  return next.includes(to);
}

/** Every state from which the table allows a move to `to`, in the order of ROUND_STATES. */
export function sourcesOf<To extends RoundState>(to: To): Array<SourceState<To>> {
  return ROUND_STATES.filter((from): from is SourceState<To> => canMove(from, to));
}

/** A decided round (no move leaves these states): its keys may expire. */
export const TERMINAL_STATES: readonly RoundState[] = ROUND_STATES.filter(
  (state) => ROUND_TRANSITIONS[state].length === 0,
);

/** The worker's decisions: the states an aggregating round may end in. */
export type RoundDecision = NextState<'AGGREGATING'>;

/**
 * The one state in which a round takes responses (updates and skips). The Lua scripts that store
 * a response check the same state atomically (round-scripts/takes-responses.lua); this is the
 * early check that spares the work of a response the round cannot take.
 */
export const RESPONDING_STATE = 'REPORTING' satisfies RoundState;

/** True when the round takes updates and skips. */
export function takesResponses(round: { state: RoundState }): boolean {
  return round.state === RESPONDING_STATE;
}
