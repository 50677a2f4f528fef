// What each job of a hierarchical round does, I/O included (blob store in, content addresses
// out). The BullMQ wiring is in hierarchical-workers.ts; the math in shard-sum.ts and shard-stats.ts.
import {
  FlotillaError,
  at,
  decodeFloat32Tensors,
  encodeFloat32Tensors,
  sha256Hex,
  updateWeight,
  type ErrorCode,
} from '@flotilla/protocol';
import type { BlobStore } from '../../shared/blob-store/index.js';
import {
  CombineJobDataSchema,
  ShardStatsJobDataSchema,
  ShardSumJobDataSchema,
  ShardSumResultSchema,
  type CombineResult,
  type ShardStatsResult,
  type ShardSumResult,
} from '../../shared/hierarchical-flow.js';
import type { AggregateUpdateRef } from '../../shared/queues.js';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import { exclusionReason, fetchUpdateBlob, loadUpdates } from '../job/load-updates.js';
import { combineShardSums, decodeShardSum, encodeShardSum, type ShardSum } from './shard-sum.js';
import { inProcessShardMath, type ShardMathRunner, type ShardSumRequest } from './shard-math.js';
import { trainedVector } from './shard-stats.js';

/** Stores bytes under their SHA-256 (once) and returns the digest. */
export async function putByDigest(blobs: BlobStore, bytes: Uint8Array): Promise<string> {
  const digest = sha256Hex(bytes);
  // Idempotent; on a blob already stored it refreshes the last use garbage collection reads.
  await blobs.put(digest, bytes);
  return digest;
}

export async function getBlob(blobs: BlobStore, digest: string, what: string): Promise<Uint8Array> {
  const bytes = await blobs.get(digest);
  if (!bytes) throw new FlotillaError('BLOB_MISSING', `${what} ${digest} is missing`);
  return bytes;
}

/** Loads a shard's deltas, checked against the adapter's names and shapes (zeros stand for frozen tensors). */
function loadShard(
  job: { expectedShapes: Record<string, number[]>; frozen: string[]; updates: AggregateUpdateRef[] },
  blobs: BlobStore,
) {
  // Only names and shapes are checked against `expected`.
  const expected: TensorMap = new Map(
    Object.entries(job.expectedShapes).map(([name, shape]) => [
      name,
      { shape, values: new Float32Array(shape.reduce((a, b) => a * b, 1)) },
    ]),
  );
  return loadUpdates({ refs: job.updates, blobs, expected, frozen: new Set(job.frozen) });
}

/**
 * Child: read the shard's blobs, have them checked (bad ones excluded with a reason, as
 * loadUpdates would) and summed by the math thread; store the sum and the median.
 */
export async function processShardSum(
  raw: unknown,
  blobs: BlobStore,
  math: ShardMathRunner = inProcessShardMath,
): Promise<ShardSumResult> {
  const parsed = ShardSumJobDataSchema.safeParse(raw);
  if (!parsed.success) throw new FlotillaError('INTERNAL', `malformed shard job: ${parsed.error.message}`);
  const job = parsed.data;
  // Only the reads happen on this event loop; hashing, decoding and checking go with the math.
  const excluded: Array<{ position: number; code: ErrorCode; reason: string }> = [];
  const fetched: Array<{ position: number; blob: ShardSumRequest['blobs'][number] }> = [];
  for (const [position, ref] of job.updates.entries()) {
    const weight = job.weighting === 'uniform' ? 1 : updateWeight(job.updateWeighting, ref.numExamples);
    try {
      const bytes = await fetchUpdateBlob(ref, blobs);
      fetched.push({ position, blob: { blobDigest: ref.blobDigest, bytes, weight } });
    } catch (error) {
      excluded.push({ position, ...exclusionReason(error) });
    }
  }
  const { sum, median, refused } = await math.sum({
    kind: 'sum',
    blobs: fetched.map((f) => f.blob),
    expectedShapes: job.expectedShapes,
    frozen: job.frozen,
    withMedian: job.withMedian,
  });
  for (const { index, code, reason } of refused)
    excluded.push({ position: at(fetched, index).position, code, reason });
  const base = {
    shardIndex: job.shardIndex,
    // In the job's order, as loadUpdates lists them.
    excluded: excluded
      .sort((a, b) => a.position - b.position)
      .map((e) => ({ updateId: at(job.updates, e.position).updateId, code: e.code, reason: e.reason })),
  };
  if (sum === null) return { ...base, sumDigest: null, medianDigest: null, totalWeight: 0, count: 0 };
  const metadata = { 'flotilla.round': job.roundId, 'flotilla.shard': String(job.shardIndex) };
  const medianDigest = median
    ? await putByDigest(blobs, encodeFloat32Tensors(median, metadata, 'F32'))
    : null;
  const sumDigest = await putByDigest(blobs, encodeShardSum(sum, metadata));
  return { ...base, sumDigest, medianDigest, totalWeight: sum.totalWeight, count: sum.count };
}

/** The shard sums behind `digests` (null: an empty shard), decoded in the given order. */
export async function loadShardSums(
  blobs: BlobStore,
  digests: ReadonlyArray<string | null>,
): Promise<ShardSum[]> {
  const sums: ShardSum[] = [];
  for (const digest of digests)
    if (digest !== null) sums.push(decodeShardSum(await getBlob(blobs, digest, 'shard sum')));
  return sums;
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
  const sums = await loadShardSums(
    blobs,
    results.map((r) => r.sumDigest),
  );
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

/** Second-pass child: the shard's updates against the round's robust reference and each other. */
export async function processShardStats(
  raw: unknown,
  blobs: BlobStore,
  math: ShardMathRunner = inProcessShardMath,
): Promise<ShardStatsResult> {
  const parsed = ShardStatsJobDataSchema.safeParse(raw);
  if (!parsed.success) throw new FlotillaError('INTERNAL', `malformed stats job: ${parsed.error.message}`);
  const job = parsed.data;
  const { loaded, excluded } = await loadShard(job, blobs);
  // These updates loaded in the first pass; one that no longer does must not vanish from the audit.
  const first = excluded[0];
  if (first)
    throw new FlotillaError(first.code, `update ${first.ref.updateId} no longer loads: ${first.reason}`);
  // Frozen tensors are zeros in every update and in the reference: screened without them.
  const frozen = new Set(job.frozen);
  const reference = trainedVector(
    decodeFloat32Tensors(await getBlob(blobs, job.referenceDigest, 'round reference')).tensors,
    frozen,
  );
  const stats = await math.stats({
    kind: 'stats',
    updates: loaded.map((u) => trainedVector(u.delta, frozen)),
    reference,
  });
  return {
    shardIndex: job.shardIndex,
    updates: loaded.map((u, i) => ({
      updateId: u.ref.updateId,
      blobDigest: u.ref.blobDigest,
      norm: stats[i]?.norm ?? Number.NaN,
      cosine: stats[i]?.cosine ?? Number.NaN,
      othersCosine: stats[i]?.othersCosine ?? null,
      nearestDistance: stats[i]?.nearestDistance ?? null,
    })),
  };
}
