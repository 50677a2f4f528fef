import { z } from 'zod';
import { DigestSchema } from '@flotilla/protocol';

/**
 * How far a hierarchical round got, saved in the aggregate job's data (`job.updateData`) before
 * each wait, so whichever worker resumes the job (after its children, a crash or a retry)
 * continues from there.
 */
export const HierarchicalProgressSchema = z.discriminatedUnion('step', [
  /** The shard-sum children are (being) added; the job waits for them. */
  z.object({
    step: z.literal('summing'),
    shards: z.number().int().positive(),
    shardSize: z.number().int().positive(),
  }),
  /** The candidate is computed and stored; the per-shard audit children are (being) added. */
  z.object({
    step: z.literal('auditing'),
    shards: z.number().int().positive(),
    shardSize: z.number().int().positive(),
    /** The ComputeRoundResult (round-candidate.ts). */
    candidateDigest: DigestSchema,
    /** The audit's robust reference (median of the shard medians); null in a DP task (no screening). */
    referenceDigest: DigestSchema.nullable(),
    /** Stats children; 0 in a DP task. */
    statsShards: z.number().int().nonnegative(),
  }),
]);
export type HierarchicalProgress = z.infer<typeof HierarchicalProgressSchema>;

/** A child job of the aggregate job: deterministic id, so adding it again is a no-op. */
export interface ChildJob {
  jobId: string;
  data: unknown;
}

/**
 * The aggregate job as a hierarchical round drives it: BullMQ's "process step jobs" pattern
 * (children whose parent is the job itself, then `moveToWaitingChildren`). Implemented on a real
 * job in bullmq-round-steps.ts.
 */
export interface RoundJobSteps {
  /** Progress saved by an earlier run of this job, or null on its first run. */
  readonly progress: HierarchicalProgress | null;
  save(progress: HierarchicalProgress): Promise<void>;
  /** Adds children of this job to `queueName` (those that exist already are left as they are). */
  addChildren(queueName: string, children: readonly ChildJob[]): Promise<void>;
  /**
   * Parks the job until its pending children complete. True when it did: the processor must
   * then stop by throwing BullMQ's WaitingChildrenError; false when every child is done.
   */
  waitForChildren(): Promise<boolean>;
  /** Return values of the completed children of `queueName`. */
  childrenValues(queueName: string): Promise<unknown[]>;
  /** Failure reasons of children of `queueName` that failed for good. */
  failedChildren(queueName: string): Promise<string[]>;
}
