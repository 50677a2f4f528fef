import { z } from 'zod';

// An operator's control over a running task: pause, resume, stop, archive. The moves are data,
// read by the coordinator (which refuses a move the table does not allow) and by the round-log
// verifier (which replays a task's `task.control` records against the same table).

/**
 * `active`: rounds open and select. `paused`: no round opens or selects (a round already
 * reporting finishes). `stopped`: no round ever again; a round not yet aggregating is abandoned.
 * `archived`: stopped, and listed apart.
 */
export const TASK_STATUSES = ['active', 'paused', 'stopped', 'archived'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const TASK_CONTROL_ACTIONS = ['pause', 'resume', 'stop', 'archive'] as const;
export type TaskControlAction = (typeof TASK_CONTROL_ACTIONS)[number];

/** Each action: the statuses it applies to and the status it leaves the task in. */
export const TASK_CONTROL_MOVES = {
  pause: { from: ['active'], to: 'paused' },
  resume: { from: ['paused'], to: 'active' },
  stop: { from: ['active', 'paused'], to: 'stopped' },
  archive: { from: ['active', 'paused', 'stopped'], to: 'archived' },
} as const satisfies Record<TaskControlAction, { from: readonly TaskStatus[]; to: TaskStatus }>;

/** The status `action` leaves a task in, or why the action does not apply to a task in `status`. */
export function applyTaskControlMove(
  status: TaskStatus,
  action: TaskControlAction,
): { ok: true; status: TaskStatus } | { ok: false; message: string } {
  const move = TASK_CONTROL_MOVES[action];
  const from: readonly TaskStatus[] = move.from;
  if (from.includes(status)) return { ok: true, status: move.to };
  return {
    ok: false,
    message: `${action} applies to a task that is ${from.join(' or ')}; this one is ${status}`,
  };
}

/** Body of `POST /api/admin/tasks/:taskId/{pause,resume,stop,archive}` (optional). */
export const TaskControlRequestSchema = z.strictObject({
  /** Why, for the round log. Default: `<action> by the operator`. */
  reason: z.string().min(1).max(2000).optional(),
});
export type TaskControlRequest = z.infer<typeof TaskControlRequestSchema>;

/** A task's control status as the coordinator stores and returns it. */
export const TaskControlStateSchema = z.strictObject({
  status: z.enum(TASK_STATUSES),
  reason: z.string().max(2000),
  /** Epoch ms of the last control action; 0 for a task no operator has touched. */
  at: z.number().int().nonnegative(),
});
export type TaskControlState = z.infer<typeof TaskControlStateSchema>;
