import { roundNumberOf, type RoundLogEvent, type RoundLogEventOf } from './events.js';

// Round rules the chain must obey beyond its cryptography: what an auditor asks of a round.
// The state is built only from records already seen, so a problem is always reported at the
// first record that breaks a rule.

/** Relative tolerance for float comparisons of norms against bounds (float32 rounding). */
const NORM_TOLERANCE = 1e-6;
/** Relative tolerance for ε against its budget (accountant rounding). */
const EPSILON_TOLERANCE = 1e-9;

type Code =
  | 'UNKNOWN_ROUND'
  | 'DUPLICATE_ROUND'
  | 'ROUND_STATE'
  | 'CLIP'
  | 'QUORUM'
  | 'UNKNOWN_PARTICIPANT'
  | 'DP_MISSING'
  | 'BUDGET'
  | 'PROMOTION'
  | 'VERSION';

interface RoundState {
  /** Null for a round abandoned before any plan was made (it never had a `round.opened`). */
  opened: RoundLogEventOf<'round.opened'> | null;
  status: 'open' | 'closed' | 'abandoned';
  acceptedDigests: Set<string>;
  closedAccepted: number | null;
  aggregation: RoundLogEventOf<'aggregation'> | null;
  promoted: boolean;
}

export interface SemanticState {
  rounds: Map<string, RoundState>;
  latestVersion: Map<string, number>;
  /** Per task, the highest round number begun so far (rounds begin in increasing order). */
  latestRound: Map<string, number>;
}

export function createSemanticState(): SemanticState {
  return { rounds: new Map(), latestVersion: new Map(), latestRound: new Map() };
}

/** A round begins (opened, or abandoned before any plan): its id must be new and its number the task's next. */
function beginRound(
  state: SemanticState,
  event: RoundLogEventOf<'round.opened' | 'round.abandoned'>,
  fail: (code: Code, message: string) => void,
): void {
  const latest = state.latestRound.get(event.taskId) ?? 0;
  const number = roundNumberOf(event.roundId);
  if (!event.roundId.startsWith(`${event.taskId}:`))
    fail('UNKNOWN_ROUND', `round ${event.roundId} does not belong to task ${event.taskId}`);
  else if (number <= latest)
    fail(
      'ROUND_STATE',
      `round ${event.roundId} begins after round ${latest} of its task: rounds go in order`,
    );
  state.latestRound.set(event.taskId, Math.max(latest, number));
}

function within(value: number, bound: number, tolerance: number): boolean {
  return value <= bound * (1 + tolerance);
}

/** Applies one event to the state and returns the rules it breaks. */
export function checkRoundSemantics(
  state: SemanticState,
  event: RoundLogEvent,
): Array<{ code: Code; message: string }> {
  const problems: Array<{ code: Code; message: string }> = [];
  const fail = (code: Code, message: string): void => {
    problems.push({ code, message });
  };
  if (event.type === 'round.opened') {
    if (state.rounds.has(event.roundId)) fail('DUPLICATE_ROUND', `round ${event.roundId} is opened twice`);
    else {
      beginRound(state, event, fail);
      state.rounds.set(event.roundId, {
        opened: event,
        status: 'open',
        acceptedDigests: new Set(),
        closedAccepted: null,
        aggregation: null,
        promoted: false,
      });
    }
    return problems;
  }
  if (event.type === 'key.rotated' || event.type === 'policy.changed') return problems;
  if (event.type === 'rollback') {
    const latest = state.latestVersion.get(event.taskId) ?? 0;
    if (event.version <= latest)
      fail('VERSION', `rollback publishes version ${event.version}, not after the latest ${latest}`);
    if (event.rollbackOf >= event.version)
      fail('VERSION', `rollback ${event.version} restores version ${event.rollbackOf}, which is not older`);
    state.latestVersion.set(event.taskId, Math.max(latest, event.version));
    return problems;
  }

  const round = state.rounds.get(event.roundId);
  if (!round && event.type === 'round.abandoned' && event.accepted === 0) {
    // Abandoned before any plan was made (selection timed out, a restart during configuration):
    // nothing was opened, so nothing else of this round may follow.
    beginRound(state, event, fail);
    state.rounds.set(event.roundId, {
      opened: null,
      status: 'abandoned',
      acceptedDigests: new Set(),
      closedAccepted: null,
      aggregation: null,
      promoted: false,
    });
    return problems;
  }
  if (!round) {
    fail('UNKNOWN_ROUND', `${event.type} for round ${event.roundId}, which was never opened in this log`);
    return problems;
  }
  const opened = round.opened;
  if (opened === null) {
    fail('ROUND_STATE', `${event.type} for round ${event.roundId}, which was abandoned before it opened`);
    return problems;
  }
  switch (event.type) {
    case 'round.selected':
    case 'update.refused':
    case 'update.refusals':
    case 'audit':
    case 'rejection':
      break;
    case 'update.accepted':
      if (!within(event.norm, event.clipBound, NORM_TOLERANCE))
        fail(
          'CLIP',
          `update from ${event.device} has norm ${event.norm} above its clip bound ${event.clipBound}`,
        );
      if (!within(event.clipBound, opened.clipNorm, NORM_TOLERANCE))
        fail(
          'CLIP',
          `update from ${event.device} was checked against ${event.clipBound}, above the round's clip norm ${opened.clipNorm}`,
        );
      round.acceptedDigests.add(event.blobDigest);
      break;
    case 'update.excluded':
      // Taken out before aggregation: an aggregation using it is UNKNOWN_PARTICIPANT.
      round.acceptedDigests.delete(event.blobDigest);
      break;
    case 'round.closed':
      if (round.status !== 'open')
        fail('ROUND_STATE', `round ${event.roundId} is closed while ${round.status}`);
      if (event.minReports !== opened.minReports)
        fail(
          'QUORUM',
          `round ${event.roundId} closes with quorum ${event.minReports}, it opened with ${opened.minReports}`,
        );
      if (event.accepted < opened.minReports)
        fail(
          'QUORUM',
          `round ${event.roundId} closed with ${event.accepted} accepted updates, quorum is ${opened.minReports}`,
        );
      round.status = 'closed';
      round.closedAccepted = event.accepted;
      break;
    case 'round.abandoned':
      if (round.status !== 'open')
        fail('ROUND_STATE', `round ${event.roundId} is abandoned while ${round.status}`);
      round.status = 'abandoned';
      break;
    case 'aggregation':
      if (round.status !== 'closed')
        fail('ROUND_STATE', `round ${event.roundId} is aggregated while ${round.status}, not closed`);
      for (const participant of event.participants)
        if (!round.acceptedDigests.has(participant.blobDigest))
          fail(
            'UNKNOWN_PARTICIPANT',
            `aggregation of ${event.roundId} uses blob ${participant.blobDigest}, not an accepted update of that round`,
          );
      if (opened.dp !== null && event.epsilon === null)
        fail('DP_MISSING', `round ${event.roundId} has a privacy budget but its aggregation reports no ε`);
      round.aggregation = event;
      break;
    case 'promotion':
      checkPromotion(state, round, opened, event, fail);
      break;
  }
  return problems;
}

function checkPromotion(
  state: SemanticState,
  round: RoundState,
  opened: RoundLogEventOf<'round.opened'>,
  event: RoundLogEventOf<'promotion'>,
  fail: (code: Code, message: string) => void,
): void {
  if (round.status === 'abandoned')
    fail('PROMOTION', `promotion of version ${event.version} from abandoned round ${event.roundId}`);
  else if (round.status === 'open')
    fail(
      'PROMOTION',
      `promotion of version ${event.version} from round ${event.roundId}, which was never closed`,
    );
  else if ((round.closedAccepted ?? 0) < opened.minReports)
    fail('QUORUM', `promotion from round ${event.roundId}, which closed without quorum`);
  if (round.promoted) fail('PROMOTION', `round ${event.roundId} is promoted twice`);
  const aggregation = round.aggregation;
  if (aggregation === null)
    fail('PROMOTION', `promotion from round ${event.roundId}, which has no aggregation record`);
  const dp = opened.dp;
  if (
    dp !== null &&
    aggregation?.epsilon != null &&
    !within(aggregation.epsilon, dp.epsilonBudget, EPSILON_TOLERANCE)
  )
    fail(
      'BUDGET',
      `promotion from round ${event.roundId} at ε=${aggregation.epsilon}, past the budget ${dp.epsilonBudget}`,
    );
  const latest = state.latestVersion.get(event.taskId) ?? 0;
  if (event.version <= latest)
    fail('VERSION', `promotion of version ${event.version}, not after the latest version ${latest}`);
  state.latestVersion.set(event.taskId, Math.max(latest, event.version));
  round.promoted = true;
}
