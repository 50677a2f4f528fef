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
import type { BlobStore, ReadArenaPool, ReadMemory } from '../../shared/blob-store/index.js';
import {
  CombineJobDataSchema,
  ShardStatsJobDataSchema,
  ShardSumJobDataSchema,
  ShardSumResultSchema,
  type CombineResult,
  type ShardStatsResult,
  type ShardSumResult,
} from '../../shared/hierarchical-flow.js';
import { exclusionReason, storedUpdateBlob } from '../job/load-updates.js';
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

/**
 * Child: read the shard's blobs, have them checked (bad ones excluded with a reason, as
 * loadUpdates would) and summed by the math thread; store the sum and the median, and return
 * the summed updates' peer stats when asked.
 */
export async function processShardSum(
  raw: unknown,
  blobs: BlobStore,
  math: ShardMathRunner = inProcessShardMath,
  arenas: ReadArenaPool | null = null,
): Promise<ShardSumResult> {
  const parsed = ShardSumJobDataSchema.safeParse(raw);
  if (!parsed.success) throw new FlotillaError('INTERNAL', `malformed shard job: ${parsed.error.message}`);
  const job = parsed.data;
  // The reads happen on this event loop (the next shard's, while the math threads compute);
  // digests, decoding and checks go with the math: on this event loop they made a third busy
  // thread beside two math threads on two cores.
  const excluded: Array<{ position: number; code: ErrorCode; reason: string }> = [];
  const fetched: Array<{ position: number; blob: ShardSumRequest['blobs'][number] }> = [];
  const { sum, median, peers, refused } = await withReadMemory(arenas, async (into) => {
    const stored = await blobs.getMany(
      job.updates.map((ref) => ref.blobDigest),
      { into },
    );
    for (const [position, ref] of job.updates.entries()) {
      const weight = job.weighting === 'uniform' ? 1 : updateWeight(job.updateWeighting, ref.numExamples);
      try {
        const bytes = storedUpdateBlob(ref, stored[position]);
        fetched.push({ position, blob: { blobDigest: ref.blobDigest, bytes, weight } });
      } catch (error) {
        excluded.push({ position, ...exclusionReason(error) });
      }
    }
    return math.sum({
      kind: 'sum',
      blobs: fetched.map((f) => f.blob),
      expectedShapes: job.expectedShapes,
      frozen: job.frozen,
      withMedian: job.withMedian,
      withPeers: job.withPeers,
    });
  });
  const refusedAt = new Set(refused.map((r) => r.index));
  const summed = fetched.filter((_, index) => !refusedAt.has(index));
  for (const { index, code, reason } of refused)
    excluded.push({ position: at(fetched, index).position, code, reason });
  const base = {
    shardIndex: job.shardIndex,
    // In the job's order, as loadUpdates lists them.
    excluded: excluded
      .sort((a, b) => a.position - b.position)
      .map((e) => ({ updateId: at(job.updates, e.position).updateId, code: e.code, reason: e.reason })),
  };
  if (sum === null)
    return { ...base, sumDigest: null, medianDigest: null, peers: null, totalWeight: 0, count: 0 };
  const metadata = { 'flotilla.round': job.roundId, 'flotilla.shard': String(job.shardIndex) };
  const medianDigest = median
    ? await putByDigest(blobs, encodeFloat32Tensors(median, metadata, 'F32'))
    : null;
  const sumDigest = await putByDigest(blobs, encodeShardSum(sum, metadata));
  return {
    ...base,
    sumDigest,
    medianDigest,
    peers:
      peers?.map((stats, i) => ({ updateId: at(job.updates, at(summed, i).position).updateId, ...stats })) ??
      null,
    totalWeight: sum.totalWeight,
    count: sum.count,
  };
}

/**
 * Runs a job's read and math with memory from `arenas` when there are any (read-arena.ts): the
 * math's answers are new arrays, never views of what was read, so the arena can be reused after.
 */
function withReadMemory<T>(
  arenas: ReadArenaPool | null,
  work: (into: ReadMemory | undefined) => Promise<T>,
): Promise<T> {
  return arenas ? arenas.use((arena) => work(arena)) : work(undefined);
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

/** Second-pass child: each of the shard's summed updates against the round's robust reference. */
export async function processShardStats(
  raw: unknown,
  blobs: BlobStore,
  math: ShardMathRunner = inProcessShardMath,
  arenas: ReadArenaPool | null = null,
): Promise<ShardStatsResult> {
  const parsed = ShardStatsJobDataSchema.safeParse(raw);
  if (!parsed.success) throw new FlotillaError('INTERNAL', `malformed stats job: ${parsed.error.message}`);
  const job = parsed.data;
  // Frozen tensors are zeros in every update and in the reference: screened without them.
  const frozen = new Set(job.frozen);
  const reference = trainedVector(
    decodeFloat32Tensors(await getBlob(blobs, job.referenceDigest, 'round reference')).tensors,
    frozen,
  );
  const cosines = await withReadMemory(arenas, async (into) => {
    const stored = await blobs.getMany(
      job.updates.map((ref) => ref.blobDigest),
      { into },
    );
    const fetched = job.updates.map((ref, index) => {
      // These updates were summed; one that is gone must not vanish from the audit.
      const bytes = stored[index];
      if (!bytes)
        throw new FlotillaError('BLOB_MISSING', `update ${ref.updateId} no longer loads: its blob is gone`);
      return { updateId: ref.updateId, blobDigest: ref.blobDigest, bytes };
    });
    return math.stats({ kind: 'stats', blobs: fetched, reference, frozen: job.frozen });
  });
  return {
    shardIndex: job.shardIndex,
    updates: job.updates.map((ref, i) => ({
      updateId: ref.updateId,
      blobDigest: ref.blobDigest,
      cosine: cosines[i] ?? Number.NaN,
    })),
  };
}
