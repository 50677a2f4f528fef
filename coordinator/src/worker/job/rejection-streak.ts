// Rejections since a task's last promotion, so the worker can stop a task that only ever gets
// rejected instead of running (and, under DP, spending ε on) rounds forever. A sorted set of
// round ids scored by round number: re-adding a retried round's id changes nothing.
import type { Redis } from 'ioredis';
import { redisKeys } from '../../shared/keys.js';

/** Records `roundId` as rejected and returns the number of rejections since the last promotion. */
export async function recordRejection(
  redis: Redis,
  prefix: string,
  job: { taskId: string; roundId: string; roundNumber: number },
): Promise<number> {
  const key = redisKeys(prefix).rejectionStreak(job.taskId);
  await redis.zadd(key, job.roundNumber, job.roundId);
  return redis.zcard(key);
}

/** A promotion ends the streak (up to and including this round). */
export async function clearRejections(
  redis: Redis,
  prefix: string,
  job: { taskId: string; roundNumber: number },
): Promise<void> {
  await redis.zremrangebyscore(redisKeys(prefix).rejectionStreak(job.taskId), '-inf', job.roundNumber);
}
