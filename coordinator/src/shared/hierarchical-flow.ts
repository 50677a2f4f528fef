import { decomposes } from './strategy-rules.js';
import type { FlowProducer, Job } from 'bullmq';
import { z } from 'zod';
import { DigestSchema, RoundIdSchema, UpdateWeightingSchema, type StrategyConfig } from '@flotilla/protocol';
import { AggregateUpdateRefSchema, type AggregateUpdateRef } from './queues.js';

/** Queue of the child jobs: each sums one shard of a round's updates. */
export const SHARD_SUM_QUEUE = 'aggregate-shard-sum';
/** Queue of the parent jobs: each combines its children's shard sums into the weighted mean. */
export const COMBINE_QUEUE = 'aggregate-combine';
/**
 * Queue of the audit's second pass: each job compares its shard's updates with the round's robust
 * reference (and with each other), so no process holds every update at once.
 */
export const SHARD_STATS_QUEUE = 'aggregate-shard-stats';

/** Rounds with at least this many updates aggregate hierarchically (when the strategy decomposes). */
export const DEFAULT_HIERARCHICAL_THRESHOLD = 200;
/** Updates per shard (per child job). */
export const DEFAULT_SHARD_SIZE = 100;

export interface HierarchicalOptions {
  /** Fewest updates for which a round aggregates in two stages. Default 200; 0 = never. */
  threshold?: number;
  /** Updates per child job. Default 100. */
  shardSize?: number;
}

/** Child job data: references to the shard's updates, never tensors. */
export const ShardSumJobDataSchema = z.object({
  roundId: RoundIdSchema,
  shardIndex: z.number().int().nonnegative(),
  /** `examples`: the task's weights w_k (`updateWeighting`); `uniform`: weight 1 (DP-FedAvg). */
  weighting: z.enum(['examples', 'uniform']),
  /** The task's `policy.weighting`: how `numExamples` becomes w_k. Default `{ rule: 'examples' }`. */
  updateWeighting: UpdateWeightingSchema.default({ rule: 'examples' }),
  /** Tensor name -> shape every delta must have (the adapter's). */
  expectedShapes: z.record(z.string(), z.array(z.number().int().nonnegative())),
  /** Tensors devices do not send (FFA-LoRA's A): a zero delta. */
  frozen: z.array(z.string()).default([]),
  /**
   * Also store the shard's coordinate-wise median, from which the audit's robust reference is
   * taken. False in a DP task, whose audit does not screen updates one by one.
   */
  withMedian: z.boolean().default(true),
  /**
   * Also measure each update against the shard's others (`peers` in the result), for the drift
   * audit's screen; a round that screens sets it with `withMedian`.
   */
  withPeers: z.boolean().default(false),
  updates: z.array(AggregateUpdateRefSchema).min(1),
});
export type ShardSumJobData = z.infer<typeof ShardSumJobDataSchema>;

export const ExcludedRefSchema = z.object({ updateId: z.string(), code: z.string(), reason: z.string() });

/** Child return value: the shard's Σ w·x blob (content address) and Σ w. */
export const ShardSumResultSchema = z.object({
  shardIndex: z.number().int().nonnegative(),
  sumDigest: DigestSchema.nullable(),
  /**
   * The shard's coordinate-wise median delta (F32 safetensors, the adapter's tensor names); null
   * when the shard has no usable update or `withMedian` was false.
   */
  medianDigest: DigestSchema.nullable(),
  /**
   * With `withPeers`: each summed update's norm, cosine to the median of the shard's other summed
   * updates, and relative distance to the closest of them (null if alone), in the job's order.
   */
  peers: z
    .array(
      z.object({
        updateId: z.string(),
        norm: z.number().nonnegative(),
        othersCosine: z.number().nullable(),
        nearestDistance: z.number().nonnegative().nullable(),
      }),
    )
    .nullable()
    .default(null),
  totalWeight: z.number().nonnegative(),
  count: z.number().int().nonnegative(),
  excluded: z.array(ExcludedRefSchema),
});
export type ShardSumResult = z.infer<typeof ShardSumResultSchema>;

/** Second-pass child data: the shard's usable updates and the round-wide blobs they are compared with. */
export const ShardStatsJobDataSchema = z.object({
  roundId: RoundIdSchema,
  shardIndex: z.number().int().nonnegative(),
  expectedShapes: z.record(z.string(), z.array(z.number().int().nonnegative())),
  frozen: z.array(z.string()).default([]),
  updates: z.array(AggregateUpdateRefSchema).min(1),
  /** The round's robust reference delta (F32 safetensors, the adapter's tensor names). */
  referenceDigest: DigestSchema,
});
export type ShardStatsJobData = z.infer<typeof ShardStatsJobDataSchema>;

/**
 * Second-pass child return value, in the shard's order: each update's cosine to the reference (its
 * stats against its peers came with the sum pass).
 */
export const ShardStatsResultSchema = z.object({
  shardIndex: z.number().int().nonnegative(),
  updates: z.array(
    z.object({
      updateId: z.string(),
      blobDigest: DigestSchema,
      cosine: z.number(),
    }),
  ),
});
export type ShardStatsResult = z.infer<typeof ShardStatsResultSchema>;

export const CombineJobDataSchema = z.object({
  roundId: RoundIdSchema,
  shards: z.number().int().positive(),
});
export type CombineJobData = z.infer<typeof CombineJobDataSchema>;

/** Parent return value: the weighted mean delta blob (f32 safetensors) and what went into it. */
export const CombineResultSchema = z.object({
  meanDigest: DigestSchema,
  totalWeight: z.number().positive(),
  count: z.number().int().positive(),
  excluded: z.array(ExcludedRefSchema),
});
export type CombineResult = z.infer<typeof CombineResultSchema>;

/** Whether a round can be summed in shard jobs: the strategy table's rule (strategy-rules.ts). */
export { decomposes } from './strategy-rules.js';

export function shouldAggregateHierarchically(options: {
  strategy: Pick<StrategyConfig, 'name' | 'loraRule'>;
  updateCount: number;
  hierarchical?: HierarchicalOptions;
  /**
   * The task leaves flagged updates out of the aggregate (`audit.excludeFlagged`): shard jobs
   * screen after summing, so such a round aggregates in one stage.
   */
  excludeFlagged?: boolean;
}): boolean {
  const threshold = options.hierarchical?.threshold ?? DEFAULT_HIERARCHICAL_THRESHOLD;
  return (
    threshold > 0 &&
    options.excludeFlagged !== true &&
    decomposes(options.strategy) &&
    options.updateCount >= threshold
  );
}

/** Splits refs, sorted by blob digest so float sums do not depend on arrival order, into shards. */
export function planShards(refs: readonly AggregateUpdateRef[], shardSize: number): AggregateUpdateRef[][] {
  if (!Number.isInteger(shardSize) || shardSize < 1)
    throw new RangeError(`shardSize must be >= 1, got ${shardSize}`);
  const sorted = [...refs].sort((a, b) =>
    a.blobDigest < b.blobDigest ? -1 : a.blobDigest > b.blobDigest ? 1 : 0,
  );
  const shards: AggregateUpdateRef[][] = [];
  for (let i = 0; i < sorted.length; i += shardSize) shards.push(sorted.slice(i, i + shardSize));
  return shards;
}

/** BullMQ refuses ':' in custom job ids. */
const jobId = (...parts: string[]) => parts.join(':').replaceAll(':', '-');

/** Deterministic id of a round's shard job (`sum` or `stats` pass): re-adding it is a no-op. */
export function shardJobId(roundId: string, pass: 'sum' | 'stats', shardIndex: number): string {
  return pass === 'sum'
    ? jobId('round', roundId, 'shard', String(shardIndex))
    : jobId('round', roundId, 'stats', String(shardIndex));
}

/**
 * Adds the two-stage FedAvg of one round as a BullMQ flow, atomically: one `shard-sum` child per
 * shard, and the `combine` parent, which BullMQ runs only when every child has completed. Job ids
 * are deterministic (`round-<roundId>-shard-<i>`, `round-<roundId>-combine`), so adding the same
 * round twice changes nothing. A child that fails for good fails the parent.
 */
export async function addHierarchicalFedAvgFlow(
  flows: FlowProducer,
  options: {
    roundId: string;
    updates: readonly AggregateUpdateRef[];
    expectedShapes: Record<string, number[]>;
    frozen?: string[];
    weighting: ShardSumJobData['weighting'];
    /** The task's `policy.weighting`. Default `{ rule: 'examples' }`. */
    updateWeighting?: ShardSumJobData['updateWeighting'];
    /** Updates per child job. Default 100. */
    shardSize?: number;
    /** Attempts per child job. Default 3. */
    attempts?: number;
  },
): Promise<Job<CombineJobData, CombineResult>> {
  const shards = planShards(options.updates, options.shardSize ?? DEFAULT_SHARD_SIZE);
  const node = await flows.add({
    name: 'combine',
    queueName: COMBINE_QUEUE,
    data: CombineJobDataSchema.parse({ roundId: options.roundId, shards: shards.length }),
    opts: { jobId: jobId('round', options.roundId, 'combine') },
    children: shards.map((updates, shardIndex) => ({
      name: 'shard-sum',
      queueName: SHARD_SUM_QUEUE,
      data: ShardSumJobDataSchema.parse({
        roundId: options.roundId,
        shardIndex,
        weighting: options.weighting,
        ...(options.updateWeighting ? { updateWeighting: options.updateWeighting } : {}),
        expectedShapes: options.expectedShapes,
        frozen: options.frozen ?? [],
        updates,
      }),
      opts: {
        jobId: shardJobId(options.roundId, 'sum', shardIndex),
        attempts: options.attempts ?? 3,
        backoff: { type: 'exponential', delay: 500 },
        failParentOnFailure: true,
      },
    })),
  });
  return node.job as Job<CombineJobData, CombineResult>;
}
