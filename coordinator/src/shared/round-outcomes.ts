import type { Redis } from 'ioredis';
import { z } from 'zod';
import { DigestSchema, RoundIdSchema, TaskIdSchema } from '@flotilla/protocol';
import { redisKeys } from './keys.js';
import { parseJsonAs } from './parse-json-as.js';

/** The worker's decision about a round, published to the server. */
export const RoundOutcomeSchema = z.object({
  taskId: TaskIdSchema,
  roundId: RoundIdSchema,
  decision: z.enum(['COMMITTED', 'REJECTED']),
  /** Promoted adapter version (COMMITTED), else null. */
  version: z.number().int().positive().nullable(),
  manifestDigest: DigestSchema.nullable(),
  reasons: z.array(z.string()),
  /**
   * DP tasks: ε spent by the task after this round (its noised aggregate charged whether promoted
   * or not), at δ; null without DP. Absent in outcomes stored before it was added.
   */
  privacy: z
    .object({ epsilon: z.number().nonnegative(), delta: z.number().gt(0).lt(1) })
    .nullable()
    .optional(),
  /** Set when the worker stopped the task (no round of it opens after this one), with why. */
  stopTask: z.string().min(1).optional(),
});
export type RoundOutcome = z.infer<typeof RoundOutcomeSchema>;

/** Stores the outcome durably under the round, then publishes it (the server also polls the key on start). */
export async function publishRoundOutcome(
  redis: Redis,
  prefix: string,
  outcome: RoundOutcome,
): Promise<void> {
  const parsed = RoundOutcomeSchema.parse(outcome);
  const keys = redisKeys(prefix);
  const json = JSON.stringify(parsed);
  await redis
    .multi()
    .set(keys.roundOutcome(parsed.roundId), json)
    .publish(keys.roundOutcomesChannel(), json)
    .exec();
}

export async function readRoundOutcome(
  redis: Redis,
  prefix: string,
  roundId: string,
): Promise<RoundOutcome | null> {
  const raw = await redis.get(redisKeys(prefix).roundOutcome(roundId));
  if (raw === null) return null;
  const parsed = RoundOutcomeSchema.safeParse(JSON.parse(raw));
  return parsed.success ? parsed.data : null;
}

/**
 * Subscribes `redisSub` (a connection dedicated to pub/sub) to outcomes; malformed messages are
 * ignored. Returns an unsubscribe function.
 */
export async function subscribeRoundOutcomes(
  redisSub: Redis,
  prefix: string,
  onOutcome: (outcome: RoundOutcome) => void,
): Promise<() => Promise<void>> {
  const channel = redisKeys(prefix).roundOutcomesChannel();
  const listener = (ch: string, message: string) => {
    if (ch !== channel) return;
    const outcome = parseJsonAs(RoundOutcomeSchema, message);
    if (outcome !== null) onOutcome(outcome);
  };
  redisSub.on('message', listener);
  await redisSub.subscribe(channel);
  return async () => {
    redisSub.off('message', listener);
    await redisSub.unsubscribe(channel);
  };
}
