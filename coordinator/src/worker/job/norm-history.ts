// The typical honest norm of the last promoted round, kept for the next rounds' audits: in a round
// where attackers are as many as the honest devices, the round's own median norm is theirs, but
// not the one of the round before (update-screen.ts). Stored per round number, so a retried job
// reads exactly what its first attempt read, whatever it wrote itself.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { redisKeys } from '../../shared/keys.js';
import type { NormScale } from '../audit/index.js';

const StoredSchema = z.object({
  roundNumber: z.number().int().nonnegative(),
  median: z.number().nonnegative(),
  spread: z.number().nonnegative(),
});

/** Promoted rounds whose scales are kept. */
const KEEP = 10;

/** The norm scale of the latest promoted round before `roundNumber`, or null. */
export async function readNormHistory(
  redis: Redis,
  prefix: string,
  job: { taskId: string; roundNumber: number },
): Promise<NormScale | null> {
  const [raw] = await redis.zrevrangebyscore(
    redisKeys(prefix).normScales(job.taskId),
    job.roundNumber - 1,
    '-inf',
    'LIMIT',
    0,
    1,
  );
  if (raw === undefined) return null;
  const parsed = StoredSchema.safeParse(JSON.parse(raw));
  return parsed.success ? { median: parsed.data.median, spread: parsed.data.spread } : null;
}

/** Records the norm scale of promoted round `roundNumber`; keeps the latest few. */
export async function writeNormHistory(
  redis: Redis,
  prefix: string,
  job: { taskId: string; roundNumber: number },
  scale: NormScale,
): Promise<void> {
  const key = redisKeys(prefix).normScales(job.taskId);
  const value = JSON.stringify(StoredSchema.parse({ roundNumber: job.roundNumber, ...scale }));
  await redis
    .multi()
    .zremrangebyscore(key, job.roundNumber, job.roundNumber)
    .zadd(key, job.roundNumber, value)
    .zremrangebyrank(key, 0, -(KEEP + 1))
    .exec();
}
