import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { FlotillaError, type TaskControlAction, type TaskControlState } from '@flotilla/protocol';
import type { RedisKeys } from '../shared/keys.js';
import { applyTaskControl } from '../shared/task-control.js';
import type { TaskRegistry } from '../shared/task-registry.js';
import type { RoundEvents } from './round-events.js';

export interface ControlTaskDeps {
  redis: Redis;
  keys: RedisKeys;
  tasks: TaskRegistry;
  events: RoundEvents;
  logger: Logger;
  /** This process's round manager, told at once (the driver also hears it on the tasks channel). */
  onTaskChanged: (taskId: string) => Promise<void>;
}

/**
 * An operator pauses, resumes, stops or archives a task: the move is stored (refused when the
 * task's status does not allow it), written to the round log, and announced to the round driver,
 * which abandons the round in flight of a stopped task or opens rounds again for a resumed one.
 */
export async function controlTask(
  deps: ControlTaskDeps,
  request: { taskId: string; action: TaskControlAction; reason?: string | undefined },
): Promise<{ taskId: string } & TaskControlState> {
  const { taskId, action } = request;
  if (!(await deps.tasks.getTask(taskId))) throw new FlotillaError('NOT_FOUND', `task ${taskId} not found`);
  const reason = request.reason ?? `${action} by the operator`;
  const state = await applyTaskControl(deps.redis, deps.keys.prefix, {
    taskId,
    action,
    reason,
    now: Date.now(),
  });
  await deps.events.append({ type: 'task.control', taskId, action, reason });
  deps.logger.warn({ taskId, action, status: state.status, reason }, `task ${action}`);
  await deps.redis.publish(deps.keys.tasksChannel(), taskId);
  await deps.onTaskChanged(taskId);
  return { taskId, ...state };
}
