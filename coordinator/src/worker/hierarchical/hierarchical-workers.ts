import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { FlotillaError, encodeFloat32Tensors, sha256Hex } from '@flotilla/protocol';
import type { BlobStore } from '../../shared/blob-store/index.js';
import {
  COMBINE_QUEUE,
  CombineJobDataSchema,
  SHARD_SUM_QUEUE,
  ShardSumJobDataSchema,
  ShardSumResultSchema,
  type CombineResult,
  type ShardSumResult,
} from '../../shared/hierarchical-flow.js';
import { DEFAULT_PREFIX } from '../../shared/keys.js';
import { loadUpdates } from '../job/load-updates.js';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import { combineShardSums, decodeShardSum, encodeShardSum, sumShard, type ShardSum } from './shard-sum.js';

export interface HierarchicalWorkersOptions {
  connection: ConnectionOptions;
  /** BullMQ prefix. Default `flotilla`. */
  prefix?: string;
  /** Where the deltas are and where shard sums and means go (by content address). */
  blobs: BlobStore;
  /** Shard jobs summed at once by this process. Default 1. */
  concurrency?: number;
  logger?: Logger;
}

export interface HierarchicalWorkers {
  shardWorker: Worker;
  combineWorker: Worker;
  close(): Promise<void>;
}

async function putByDigest(blobs: BlobStore, bytes: Uint8Array): Promise<string> {
  const digest = sha256Hex(bytes);
  if (!(await blobs.has(digest))) await blobs.put(digest, bytes);
  return digest;
}

/** Child: load and validate the shard's deltas (bad ones excluded with a reason), sum them. */
export async function processShardSum(raw: unknown, blobs: BlobStore): Promise<ShardSumResult> {
  const parsed = ShardSumJobDataSchema.safeParse(raw);
  if (!parsed.success) throw new FlotillaError('BAD_REQUEST', `malformed shard job: ${parsed.error.message}`);
  const job = parsed.data;
  // Only names and shapes are checked against `expected`; zeros stand for frozen tensors.
  const expected: TensorMap = new Map(
    Object.entries(job.expectedShapes).map(([name, shape]) => [
      name,
      { shape, values: new Float32Array(shape.reduce((a, b) => a * b, 1)) },
    ]),
  );
  const { loaded, excluded } = await loadUpdates({
    refs: job.updates,
    blobs,
    expected,
    frozen: new Set(job.frozen),
  });
  const base = {
    shardIndex: job.shardIndex,
    excluded: excluded.map((e) => ({ updateId: e.ref.updateId, code: e.code, reason: e.reason })),
  };
  if (loaded.length === 0) return { ...base, sumDigest: null, totalWeight: 0, count: 0 };
  const sum = sumShard(
    loaded.map((u) => ({ delta: u.delta, weight: job.weighting === 'uniform' ? 1 : u.ref.numExamples })),
  );
  const bytes = encodeShardSum(sum, {
    'flotilla.round': job.roundId,
    'flotilla.shard': String(job.shardIndex),
  });
  return {
    ...base,
    sumDigest: await putByDigest(blobs, bytes),
    totalWeight: sum.totalWeight,
    count: sum.count,
  };
}

/** Parent: every child is done; add their sums (in shard order) and divide by Σ w. */
export async function processCombine(
  raw: unknown,
  childValues: Record<string, unknown>,
  blobs: BlobStore,
): Promise<CombineResult> {
  const job = CombineJobDataSchema.parse(raw);
  const results = Object.values(childValues)
    .map((v) => ShardSumResultSchema.parse(v))
    .sort((a, b) => a.shardIndex - b.shardIndex);
  if (results.length !== job.shards)
    throw new FlotillaError('INTERNAL', `${results.length} of ${job.shards} shard sums are in`);
  const sums: ShardSum[] = [];
  for (const r of results) {
    if (r.sumDigest === null) continue;
    const bytes = await blobs.get(r.sumDigest);
    if (!bytes) throw new FlotillaError('BLOB_MISSING', `shard sum ${r.sumDigest} is missing`);
    sums.push(decodeShardSum(bytes));
  }
  const excluded = results.flatMap((r) => r.excluded);
  if (sums.length === 0) throw new FlotillaError('BAD_REQUEST', `no usable update in round ${job.roundId}`);
  const { mean, totalWeight, count } = combineShardSums(sums);
  const bytes = encodeFloat32Tensors(
    mean,
    { 'flotilla.round': job.roundId, 'flotilla.stage': 'hierarchical' },
    'F32',
  );
  return { meanDigest: await putByDigest(blobs, bytes), totalWeight, count, excluded };
}

const UNRECOVERABLE = new Set(['BAD_REQUEST', 'CORRUPT_FILE', 'SHAPE_MISMATCH']);

function failHard(error: unknown): never {
  if (error instanceof FlotillaError && UNRECOVERABLE.has(error.code))
    throw new UnrecoverableError(`${error.code}: ${error.message}`);
  throw error;
}

/**
 * Workers of the two-stage FedAvg flow (see shared/hierarchical-flow.ts). Any number of worker
 * processes may run them: BullMQ hands each shard to one of them, and the parent to one once all
 * its children have completed.
 */
export async function startHierarchicalWorkers(
  options: HierarchicalWorkersOptions,
): Promise<HierarchicalWorkers> {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const { blobs, logger } = options;
  const shardWorker = new Worker(
    SHARD_SUM_QUEUE,
    async (job: Job) => {
      const result = await processShardSum(job.data, blobs).catch(failHard);
      logger?.info({ jobId: job.id, count: result.count }, 'shard summed');
      return result;
    },
    { connection: options.connection, prefix, concurrency: options.concurrency ?? 1 },
  );
  const combineWorker = new Worker(
    COMBINE_QUEUE,
    async (job: Job) => {
      const result = await processCombine(job.data, await job.getChildrenValues(), blobs).catch(failHard);
      logger?.info({ jobId: job.id, count: result.count }, 'shard sums combined');
      return result;
    },
    { connection: options.connection, prefix },
  );
  await Promise.all([shardWorker.waitUntilReady(), combineWorker.waitUntilReady()]);
  return {
    shardWorker,
    combineWorker,
    async close() {
      await Promise.all([shardWorker.close(), combineWorker.close()]);
    },
  };
}
