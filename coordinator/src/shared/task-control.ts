import type { Redis } from 'ioredis';
import {
  FlotillaError,
  TASK_CONTROL_MOVES,
  TaskControlStateSchema,
  applyTaskControlMove,
  type TaskControlAction,
  type TaskControlState,
} from '@flotilla/protocol';
import { redisKeys } from './keys.js';
import { TaskStopSchema } from './task-stop.js';
import { runScript } from './redis-script.js';

// An operator's pause, resume, stop and archive of a task, stored beside the worker's stop
// (task-stop.ts). The moves are protocol's TASK_CONTROL_MOVES; a move is a compare-and-set, so two
// operators acting at once cannot both move the task from the same status.

const UNTOUCHED: TaskControlState = { status: 'active', reason: '', at: 0 };

function parseControl(raw: string | null): TaskControlState {
  if (raw === null) return UNTOUCHED;
  try {
    return TaskControlStateSchema.parse(JSON.parse(raw));
  } catch {
    // An unreadable record must not restart a task an operator stopped.
    return { status: 'stopped', reason: 'stopped (unreadable control record)', at: 0 };
  }
}

/** The operator's control status of `taskId` (`active` for a task nobody touched). */
export async function readTaskControl(
  redis: Redis,
  prefix: string,
  taskId: string,
): Promise<TaskControlState> {
  return parseControl(await redis.get(redisKeys(prefix).taskControl(taskId)));
}

/**
 * Whether the task runs rounds now, in one read: the operator's status, else `stopped` when the
 * worker stopped it (e.g. its privacy budget is spent), with who stopped it and why.
 */
export interface TaskRunState {
  status: TaskControlState['status'];
  reason: string;
  /** Who put the task in this status; null for an active task. */
  by: 'operator' | 'worker' | null;
}

export async function readTaskRunState(redis: Redis, prefix: string, taskId: string): Promise<TaskRunState> {
  const keys = redisKeys(prefix);
  const [control, stop] = await redis.mget(keys.taskControl(taskId), keys.taskStop(taskId));
  const operator = parseControl(control ?? null);
  if (operator.status !== 'active')
    return { status: operator.status, reason: operator.reason, by: 'operator' };
  if (stop !== null && stop !== undefined) {
    const parsed = TaskStopSchema.safeParse(safeJson(stop));
    return {
      status: 'stopped',
      reason: parsed.success ? parsed.data.reason : 'stopped (unreadable stop record)',
      by: 'worker',
    };
  }
  return { status: 'active', reason: '', by: null };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// Compare-and-set: writes ARGV[2] when the stored status (`active` when none, `stopped` when
// unreadable) is one of ARGV[1] (comma separated). Returns { 1 | 0, the status found }.
const SET_IF_STATUS = `
local raw = redis.call('GET', KEYS[1])
local status = 'active'
if raw then
  local ok, value = pcall(cjson.decode, raw)
  if ok and type(value) == 'table' and type(value.status) == 'string' then status = value.status else status = 'stopped' end
end
for s in string.gmatch(ARGV[1], '[^,]+') do
  if s == status then
    redis.call('SET', KEYS[1], ARGV[2])
    return {1, status}
  end
end
return {0, status}
`;

/**
 * Applies an operator's action atomically: BAD_REQUEST, naming the action and the task's status,
 * when TASK_CONTROL_MOVES does not allow it from the status the task is in.
 */
export async function applyTaskControl(
  redis: Redis,
  prefix: string,
  options: { taskId: string; action: TaskControlAction; reason: string; now: number },
): Promise<TaskControlState> {
  const move = TASK_CONTROL_MOVES[options.action];
  const next: TaskControlState = { status: move.to, reason: options.reason, at: options.now };
  const [applied, found] = (await runScript(
    redis,
    SET_IF_STATUS,
    1,
    redisKeys(prefix).taskControl(options.taskId),
    move.from.join(','),
    JSON.stringify(next),
  )) as [number, string];
  if (applied === 1) return next;
  const status = TaskControlStateSchema.shape.status.safeParse(found);
  const refusal = applyTaskControlMove(status.success ? status.data : 'stopped', options.action);
  throw new FlotillaError(
    'BAD_REQUEST',
    `task ${options.taskId}: ${refusal.ok ? `its status changed to ${found}` : refusal.message}`,
  );
}
