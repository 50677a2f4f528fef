import { Queue, type ConnectionOptions } from 'bullmq';
import { z } from 'zod';
import { DigestSchema, RoundIdSchema, TaskIdSchema } from '@flotilla/protocol';
import { DEFAULT_PREFIX } from './keys.js';

/** The BullMQ queue the server fills on round close and the worker drains. */
export const AGGREGATE_QUEUE = 'aggregate';

/** One accepted update, by reference: the worker reads the blob from the blob store. */
export const AggregateUpdateRefSchema = z.object({
  updateId: z.string().min(1),
  /** Keyed hash of the device id (never the id itself). */
  devicePseudonym: z.string().min(1),
  blobDigest: DigestSchema,
  /** How the round log names the update when it differs from `blobDigest`: its DP commitment. */
  commitment: DigestSchema.optional(),
  /** FedAvg weight. */
  numExamples: z.number().int().positive(),
  /** Global L2 norm recomputed by the coordinator from the blob. */
  norm: z.number().nonnegative(),
  /** Whether the device reported that clipping scaled its delta down. */
  clipped: z.boolean(),
});
export type AggregateUpdateRef = z.infer<typeof AggregateUpdateRefSchema>;

/** Job data of `aggregate`: references only, never tensors. */
export const AggregateJobDataSchema = z.object({
  taskId: TaskIdSchema,
  roundId: RoundIdSchema,
  roundNumber: z.number().int().nonnegative(),
  /** Adapter version the round trained from. */
  parentVersion: z.number().int().nonnegative(),
  /** L2 clip bound the round enforced. */
  clipNorm: z.number().positive(),
  updates: z.array(AggregateUpdateRefSchema),
});
export type AggregateJobData = z.infer<typeof AggregateJobDataSchema>;

/**
 * Deterministic job id `round:<roundId>:aggregate`; BullMQ refuses ':' in custom ids, so every
 * ':' becomes '-': `round-<taskId>-<n>-aggregate`. Adding the same job twice is a no-op.
 */
export function aggregateJobId(roundId: string): string {
  return `round:${roundId}:aggregate`.replaceAll(':', '-');
}

/**
 * How long BullMQ keeps finished aggregate jobs (seconds): completed ones as long as a decided
 * round's keys (7 days), failed ones 30 days for post-mortems. Without it every job's data (one
 * reference per update) stays in Redis forever. The worker's stored round outcome, not the job,
 * is what makes a re-enqueued round a no-op.
 */
export const AGGREGATE_JOB_RETENTION = {
  removeOnComplete: { age: 7 * 24 * 60 * 60 },
  removeOnFail: { age: 30 * 24 * 60 * 60 },
} as const;

/** The `aggregate` queue under `${prefix}` (BullMQ's key prefix). */
export function aggregateQueue(
  connection: ConnectionOptions,
  prefix: string = DEFAULT_PREFIX,
): Queue<AggregateJobData> {
  return new Queue<AggregateJobData>(AGGREGATE_QUEUE, { connection, prefix });
}
