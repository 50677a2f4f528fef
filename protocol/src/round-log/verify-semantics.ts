import { canonicalJson } from '../canonical-json.js';
import { applyTaskControlMove } from '../messages/task-control.js';
import { roundNumberOf, type RoundLogEvent, type RoundLogEventOf } from './events.js';
import { checkDecision } from './verify-decisions.js';
import { screenedOutIndices } from './screened-out.js';
import { checkAggregationPrivacy, checkPerUpdatePublication, checkRoundPromise } from './verify-privacy.js';
import {
  taskState,
  type Fail,
  type RoundState,
  type SemanticCode,
  type SemanticState,
} from './verify-state.js';

export { createSemanticState, type SemanticState } from './verify-state.js';

// Round rules the chain must obey beyond its cryptography: what an auditor asks of a round. A key
// holder who lies must at least be consistent: states in order, counts that add up, privacy as the
// task promised. The state is built only from records already seen, so a problem is always
// reported at the first record that breaks a rule. docs/auditing.md lists every rule.

/** Relative tolerance for float comparisons of norms against bounds (float32 rounding). */
const NORM_TOLERANCE = 1e-6;

function within(value: number, bound: number, tolerance: number): boolean {
  return value <= bound * (1 + tolerance);
}

/** Whether a round has ended: abandoned, or decided (promoted or rejected). */
function ended(round: RoundState): boolean {
  return round.status === 'abandoned' || round.decision !== null;
}

/**
 * A round begins (opened, or abandoned before any plan): its id is its task's, its number higher
 * than every earlier round of the task, and the task's previous round has ended.
 */
function beginRound(
  state: SemanticState,
  event: RoundLogEventOf<'round.opened' | 'round.abandoned'>,
  opened: RoundLogEventOf<'round.opened'> | null,
  fail: Fail,
): void {
  const task = taskState(state, event.taskId);
  const number = roundNumberOf(event.roundId);
  if (!event.roundId.startsWith(`${event.taskId}:`))
    fail('UNKNOWN_ROUND', `round ${event.roundId} does not belong to task ${event.taskId}`);
  else if (number <= task.latestRound)
    fail(
      'ROUND_STATE',
      `round ${event.roundId} begins after round ${task.latestRound} of its task: rounds go in order`,
    );
  const previous = task.currentRound === null ? undefined : state.rounds.get(task.currentRound);
  if (previous && !ended(previous))
    fail(
      'ROUND_STATE',
      `round ${event.roundId} begins while round ${task.currentRound ?? ''} of its task is ${previous.status === 'open' ? 'open' : 'closed without a decision'}`,
    );
  task.latestRound = Math.max(task.latestRound, number);
  task.currentRound = event.roundId;
  state.rounds.set(event.roundId, {
    opened,
    status: opened ? 'open' : 'abandoned',
    selected: null,
    accepted: new Map(),
    refusedWhileOpen: 0,
    closed: null,
    aggregation: null,
    audit: null,
    decision: null,
  });
}

/** Applies one event to the state and returns the rules it breaks. */
export function checkRoundSemantics(
  state: SemanticState,
  event: RoundLogEvent,
): Array<{ code: SemanticCode; message: string }> {
  const problems: Array<{ code: SemanticCode; message: string }> = [];
  const fail: Fail = (code, message) => {
    problems.push({ code, message });
  };
  switch (event.type) {
    case 'key.rotated':
      return problems;
    case 'policy.changed':
      // The task's privacy promise may change from here on, and only from here on.
      for (const [taskId, task] of state.tasks)
        if (event.taskId === null || event.taskId === taskId) task.privacy.promise = undefined;
      return problems;
    case 'rollback': {
      const task = taskState(state, event.taskId);
      if (event.version <= task.latestVersion)
        fail(
          'VERSION',
          `rollback publishes version ${event.version}, not after the latest ${task.latestVersion}`,
        );
      if (event.rollbackOf >= event.version)
        fail('VERSION', `rollback ${event.version} restores version ${event.rollbackOf}, which is not older`);
      task.latestVersion = Math.max(task.latestVersion, event.version);
      return problems;
    }
    case 'task.control': {
      // The operator's moves follow the same table the coordinator applies them by.
      const task = taskState(state, event.taskId);
      const move = applyTaskControlMove(task.status, event.action);
      if (move.ok) task.status = move.status;
      else fail('TASK_CONTROL', `task ${event.taskId}: ${move.message}`);
      return problems;
    }
    case 'round.opened':
      if (state.rounds.has(event.roundId)) fail('DUPLICATE_ROUND', `round ${event.roundId} is opened twice`);
      else {
        beginRound(state, event, event, fail);
        checkRoundPromise(taskState(state, event.taskId).privacy, event, fail);
      }
      return problems;
  }

  const round = state.rounds.get(event.roundId);
  if (!round && event.type === 'round.abandoned' && event.accepted === 0) {
    // Abandoned before any plan was made (selection timed out, a restart during configuration):
    // nothing was opened, so nothing else of this round may follow.
    beginRound(state, event, null, fail);
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
      if (round.status !== 'open' || round.selected !== null)
        fail(
          'ROUND_STATE',
          `round ${event.roundId} selects devices ${round.selected ? 'again' : `while ${round.status}`}`,
        );
      round.selected = new Set(event.devices);
      if (round.selected.size !== event.devices.length)
        fail('COUNTS', `round ${event.roundId} selects a device more than once`);
      break;
    case 'update.accepted':
      checkAccepted(round, opened, event, fail);
      break;
    case 'update.refused':
      if (round.status === 'open') round.refusedWhileOpen++;
      checkPerUpdatePublication(opened, event, fail);
      break;
    case 'update.refusals':
      // Repeats counted rather than logged one by one: they add to the same total.
      if (round.status === 'open') for (const { count } of event.counts) round.refusedWhileOpen += count;
      break;
    case 'update.excluded':
      // An accepted update taken out before the round's end (a revoked device): the end record no
      // longer counts it, and an aggregation using it is UNKNOWN_PARTICIPANT.
      if (round.status !== 'open')
        fail(
          'ROUND_STATE',
          `an update of round ${event.roundId} is excluded while the round is ${round.status}`,
        );
      if (round.accepted.get(event.device) !== event.blobDigest)
        fail(
          'UNKNOWN_PARTICIPANT',
          `round ${event.roundId} excludes blob ${event.blobDigest} from ${event.device}, not an update it accepted from that device`,
        );
      else round.accepted.delete(event.device);
      break;
    case 'round.closed':
      checkClosed(round, opened, event, fail);
      break;
    case 'round.abandoned':
      if (round.status !== 'open')
        fail('ROUND_STATE', `round ${event.roundId} is abandoned while ${round.status}`);
      if (event.minReports !== opened.minReports)
        fail(
          'QUORUM',
          `round ${event.roundId} is abandoned with quorum ${event.minReports}, it opened with ${opened.minReports}`,
        );
      if (event.accepted !== round.accepted.size)
        fail(
          'COUNTS',
          `round ${event.roundId} is abandoned with ${event.accepted} accepted updates, the log accepted ${round.accepted.size}`,
        );
      round.status = 'abandoned';
      break;
    case 'aggregation':
      checkAggregation(state, round, opened, event, fail);
      break;
    case 'audit':
      checkPerUpdatePublication(opened, event, fail);
      checkDecision(taskState(state, event.taskId), round, opened, event, fail);
      break;
    case 'promotion':
    case 'rejection':
      checkDecision(taskState(state, event.taskId), round, opened, event, fail);
      break;
  }
  return problems;
}

function checkAccepted(
  round: RoundState,
  opened: RoundLogEventOf<'round.opened'>,
  event: RoundLogEventOf<'update.accepted'>,
  fail: Fail,
): void {
  if (round.status !== 'open')
    fail(
      'ROUND_STATE',
      `an update from ${event.device} is accepted into round ${event.roundId} while it is ${round.status}`,
    );
  if (round.selected === null)
    fail(
      'UNKNOWN_PARTICIPANT',
      `an update from ${event.device} is accepted into round ${event.roundId} before any device was selected`,
    );
  else if (!round.selected.has(event.device))
    fail(
      'UNKNOWN_PARTICIPANT',
      `an update from ${event.device} is accepted into round ${event.roundId}, which did not select it`,
    );
  if (round.accepted.has(event.device))
    fail('COUNTS', `a second update from ${event.device} is accepted into round ${event.roundId}`);
  checkPerUpdatePublication(opened, event, fail);
  if (event.norm !== null && !within(event.norm, event.clipBound, NORM_TOLERANCE))
    fail(
      'CLIP',
      `update from ${event.device} has norm ${event.norm} above its clip bound ${event.clipBound}`,
    );
  if (!within(event.clipBound, opened.clipNorm, NORM_TOLERANCE))
    fail(
      'CLIP',
      `update from ${event.device} was checked against ${event.clipBound}, above the round's clip norm ${opened.clipNorm}`,
    );
  round.accepted.set(event.device, event.blobDigest);
}

function checkClosed(
  round: RoundState,
  opened: RoundLogEventOf<'round.opened'>,
  event: RoundLogEventOf<'round.closed'>,
  fail: Fail,
): void {
  const id = event.roundId;
  if (round.status !== 'open') fail('ROUND_STATE', `round ${id} is closed while ${round.status}`);
  if (event.minReports !== opened.minReports)
    fail('QUORUM', `round ${id} closes with quorum ${event.minReports}, it opened with ${opened.minReports}`);
  if (event.accepted < opened.minReports)
    fail(
      'QUORUM',
      `round ${id} closed with ${event.accepted} accepted updates, quorum is ${opened.minReports}`,
    );
  if (event.accepted !== round.accepted.size)
    fail(
      'COUNTS',
      `round ${id} closes with ${event.accepted} accepted updates, the log accepted ${round.accepted.size}`,
    );
  if (event.refused !== round.refusedWhileOpen)
    fail(
      'COUNTS',
      `round ${id} closes with ${event.refused} refused updates, the log refused ${round.refusedWhileOpen}`,
    );
  const goalReached = event.accepted >= opened.goalCount;
  if ((event.reason === 'goal-reached') !== goalReached)
    fail(
      'COUNTS',
      `round ${id} closes for ${event.reason} with ${event.accepted} accepted updates and goal ${opened.goalCount}`,
    );
  // Skips are not logged, so `all-answered` cannot be checked; `deadline` can be contradicted:
  // every selected device's update was accepted, so none was still to answer.
  if (event.reason === 'deadline' && round.selected !== null && round.accepted.size >= round.selected.size)
    fail(
      'COUNTS',
      `round ${id} closes for the deadline, but every one of its ${round.selected.size} selected devices had an update accepted`,
    );
  round.status = 'closed';
  round.closed = event;
}

function checkAggregation(
  state: SemanticState,
  round: RoundState,
  opened: RoundLogEventOf<'round.opened'>,
  event: RoundLogEventOf<'aggregation'>,
  fail: Fail,
): void {
  const id = event.roundId;
  const previous = round.aggregation;
  if (previous !== null) {
    // A retried job logs its round's aggregation again: the same release, or it is a second one.
    if (!sameRelease(previous, event))
      fail('ROUND_STATE', `round ${id} is aggregated a second time with another result`);
    return;
  }
  if (round.status !== 'closed')
    fail('ROUND_STATE', `round ${id} is aggregated while ${round.status}, not closed`);
  if (round.decision !== null) fail('ROUND_STATE', `round ${id} is aggregated after its decision`);
  const devices = new Set<string>();
  for (const participant of event.participants) {
    if (round.accepted.get(participant.device) !== participant.blobDigest)
      fail(
        'UNKNOWN_PARTICIPANT',
        `aggregation of ${id} uses blob ${participant.blobDigest} from ${participant.device}, not an update accepted from that device in that round`,
      );
    if (devices.has(participant.device))
      fail('COUNTS', `aggregation of ${id} counts ${participant.device} more than once`);
    devices.add(participant.device);
  }
  checkScreenedOut(event, fail);
  checkAggregationPrivacy(taskState(state, event.taskId).privacy, opened, event, fail);
  checkPerUpdatePublication(opened, event, fail);
  round.aggregation = event;
}

/**
 * `strategyOptions.screenedOut` lists the participants the drift screen left out of the
 * aggregate (`audit.excludeFlagged`): indices of the record's participants, each weighing 0.
 */
function checkScreenedOut(event: RoundLogEventOf<'aggregation'>, fail: Fail): void {
  const value = event.strategyOptions.screenedOut;
  const indices = screenedOutIndices(value, event.participants.length);
  if (indices === null) {
    fail(
      'COUNTS',
      `aggregation of ${event.roundId} has a screenedOut ${JSON.stringify(value)} that does not name its participants`,
    );
    return;
  }
  for (const index of indices) {
    const participant = event.participants[index];
    if (participant !== undefined && participant.weight !== 0)
      fail(
        'COUNTS',
        `aggregation of ${event.roundId} screens out ${participant.device} but weighs it ${participant.weight}, not 0`,
      );
  }
}

/** Two aggregation records of one round describe the same release (only retention may differ). */
function sameRelease(a: RoundLogEventOf<'aggregation'>, b: RoundLogEventOf<'aggregation'>): boolean {
  const { deltasRetainedUntil: _a, ...left } = a;
  const { deltasRetainedUntil: _b, ...right } = b;
  return canonicalJson(left) === canonicalJson(right);
}
