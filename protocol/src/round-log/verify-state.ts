import type { TaskStatus } from '../messages/task-control.js';
import type { RoundLogEventOf } from './events.js';

// What the round rules remember of a log read so far (verify-semantics.ts applies each event).

export type SemanticCode =
  | 'UNKNOWN_ROUND'
  | 'DUPLICATE_ROUND'
  | 'ROUND_STATE'
  | 'CLIP'
  | 'QUORUM'
  | 'COUNTS'
  | 'UNKNOWN_PARTICIPANT'
  | 'DP_MISSING'
  | 'PRIVACY'
  | 'EPSILON'
  | 'BUDGET'
  | 'PROMOTION'
  | 'VERSION'
  | 'TASK_CONTROL';

/** Relative tolerance for ε against its budget (accountant rounding). */
export const EPSILON_TOLERANCE = 1e-9;

export type Fail = (code: SemanticCode, message: string) => void;

/** What the log has said about one round so far. */
export interface RoundState {
  /** Null for a round abandoned before any plan was made (it never had a `round.opened`). */
  opened: RoundLogEventOf<'round.opened'> | null;
  status: 'open' | 'closed' | 'abandoned';
  /** Pseudonyms of `round.selected`; null before it. */
  selected: Set<string> | null;
  /** Accepted updates: device pseudonym → the blob accepted from it. */
  accepted: Map<string, string>;
  /** Refusals logged while the round was open (the ones `round.closed` counts). */
  refusedWhileOpen: number;
  closed: RoundLogEventOf<'round.closed'> | null;
  aggregation: RoundLogEventOf<'aggregation'> | null;
  audit: RoundLogEventOf<'audit'> | null;
  decision: RoundLogEventOf<'promotion' | 'rejection'> | null;
}

/** A task's privacy as the log has told it so far. */
export interface TaskPrivacy {
  /** The DP promise of the task's rounds (`round.opened.dp`); undefined before its first round or after a policy change. */
  promise: RoundLogEventOf<'round.opened'>['dp'] | undefined;
  /** ε of the task's latest aggregation; null before its first one. */
  epsilon: number | null;
}

/** What the log has said about one task so far. */
export interface TaskState {
  /** Highest round number begun so far (rounds begin in increasing order). */
  latestRound: number;
  /** The round begun last: the next may begin only once it has ended. */
  currentRound: string | null;
  latestVersion: number;
  privacy: TaskPrivacy;
  /** Where the task's `task.control` records have left it (`active` before any). */
  status: TaskStatus;
}

export interface SemanticState {
  rounds: Map<string, RoundState>;
  tasks: Map<string, TaskState>;
}

export function createSemanticState(): SemanticState {
  return { rounds: new Map(), tasks: new Map() };
}

export function taskState(state: SemanticState, taskId: string): TaskState {
  let task = state.tasks.get(taskId);
  if (!task) {
    task = {
      latestRound: 0,
      currentRound: null,
      latestVersion: 0,
      privacy: { promise: undefined, epsilon: null },
      status: 'active',
    };
    state.tasks.set(taskId, task);
  }
  return task;
}
