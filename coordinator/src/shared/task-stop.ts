import type { Redis } from 'ioredis';
import { z } from 'zod';
import { RoundIdSchema } from '@flotilla/protocol';
import { redisKeys } from './keys.js';
import { parseJsonAs } from './parse-json-as.js';

/**
 * A task the worker has stopped, and why (e.g. its privacy budget cannot pay for another noised
 * aggregate). The coordinator opens no further round of a stopped task; the first stop wins.
 */
export const TaskStopSchema = z.object({
  reason: z.string().min(1).max(2000),
  /** The round whose decision stopped the task. */
  roundId: RoundIdSchema,
  /** Epoch ms. */
  at: z.number().int().nonnegative(),
});
export type TaskStop = z.infer<typeof TaskStopSchema>;

/** Records that `taskId` stops; a second call keeps the first reason. */
export async function stopTask(redis: Redis, prefix: string, taskId: string, stop: TaskStop): Promise<void> {
  await redis.set(redisKeys(prefix).taskStop(taskId), JSON.stringify(TaskStopSchema.parse(stop)), 'NX');
}

/** Why `taskId` was stopped, or null while it runs (an unreadable record counts as stopped). */
export async function readTaskStop(redis: Redis, prefix: string, taskId: string): Promise<TaskStop | null> {
  const raw = await redis.get(redisKeys(prefix).taskStop(taskId));
  if (raw === null) return null;
  // An unreadable stop record still stops the task.
  return (
    parseJsonAs(TaskStopSchema, raw) ?? {
      reason: 'stopped (unreadable stop record)',
      roundId: `${taskId}:0`,
      at: 0,
    }
  );
}
