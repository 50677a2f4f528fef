import type { FlowProducer, Job } from 'bullmq';
import { FlotillaError } from '@flotilla/protocol';
import { AGGREGATE_JOB_RETENTION } from '../../shared/queues.js';
import { HierarchicalProgressSchema, type RoundJobSteps } from './round-steps.js';

/** Attempts per shard job; transient failures (a Redis blip, a slow disk) are retried with backoff. */
const SHARD_ATTEMPTS = 3;

/**
 * {@link RoundJobSteps} on a real BullMQ job, BullMQ's "process step jobs" pattern: a
 * `FlowProducer` adds the children in one transaction with `parent` = this job and deterministic
 * ids, then `moveToWaitingChildren(token)` parks the job until they complete. A child that fails
 * for good is ignored rather than failing the parent (`ignoreDependencyOnFailure`), so the job
 * still runs and rejects the round with the child's reason instead of leaving it undecided.
 * @param flows a flow producer on the job's connection and prefix.
 */
export function bullmqRoundSteps(job: Job, token: string | undefined, flows: FlowProducer): RoundJobSteps {
  const raw: unknown = (job.data as { hierarchical?: unknown }).hierarchical;
  const parsed = raw === undefined ? null : HierarchicalProgressSchema.safeParse(raw);
  if (parsed && !parsed.success)
    throw new FlotillaError('INTERNAL', `malformed hierarchical progress: ${parsed.error.message}`);
  // `<prefix>:aggregate` -> `<prefix>:<queue>`, the start of the children's keys.
  const prefix = job.queueQualifiedName.slice(0, job.queueQualifiedName.lastIndexOf(':'));
  const ofQueue = <T>(entries: Record<string, T>, queueName: string): T[] =>
    Object.entries(entries)
      .filter(([key]) => key.startsWith(`${prefix}:${queueName}:`))
      .map(([, value]) => value);
  return {
    progress: parsed?.data ?? null,
    async save(progress) {
      await job.updateData({ ...(job.data as object), hierarchical: progress });
    },
    async addChildren(queueName, children) {
      if (job.id === undefined) throw new FlotillaError('INTERNAL', 'the aggregate job has no id');
      const parent = { id: job.id, queue: job.queueQualifiedName };
      await flows.addBulk(
        children.map((child) => ({
          name: queueName,
          queueName,
          prefix,
          data: child.data,
          opts: {
            jobId: child.jobId,
            parent,
            attempts: SHARD_ATTEMPTS,
            backoff: { type: 'exponential', delay: 500 },
            ignoreDependencyOnFailure: true,
            // Kept as long as their round's aggregate job; the parent holds their return values.
            ...AGGREGATE_JOB_RETENTION,
          },
        })),
      );
    },
    async waitForChildren() {
      if (token === undefined) throw new FlotillaError('INTERNAL', 'no lock token to wait for children with');
      return job.moveToWaitingChildren(token);
    },
    async childrenValues(queueName) {
      return ofQueue(await job.getChildrenValues(), queueName);
    },
    async failedChildren(queueName) {
      return ofQueue(await job.getIgnoredChildrenFailures(), queueName);
    },
  };
}
