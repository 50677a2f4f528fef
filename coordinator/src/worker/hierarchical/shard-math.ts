// The math of both shard passes as requests a worker thread answers (stats-thread.ts), or this
// thread when there is none: the I/O stays in shard-jobs.ts, on the event loop that renews locks.
import type { ErrorCode } from '@flotilla/protocol';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import { checkUpdateBlob, exclusionReason } from '../job/load-updates.js';
import type { UpdateStats } from '../audit/reference.js';
import { medianDelta, shardStats } from './shard-stats.js';
import { sumShard, type ShardSum } from './shard-sum.js';

/**
 * Sum pass: the shard's blobs as read from the store, checked and decoded here (digest, names and
 * shapes, frozen zeros, finite values: load-updates.ts), then Σ w·x of those that pass and, when
 * the round is screened, their median.
 */
export interface ShardSumRequest {
  kind: 'sum';
  /** In shard order, each with its FedAvg weight. */
  blobs: Array<{ blobDigest: string; bytes: Uint8Array; weight: number }>;
  /** Tensor name -> shape every delta must have (the adapter's). */
  expectedShapes: Record<string, number[]>;
  /** Tensors devices do not send (FFA-LoRA's A): zero in every delta, so their sum and median are. */
  frozen: string[];
  withMedian: boolean;
}

export interface ShardSumAnswer {
  /** Null when no blob passed the checks. */
  sum: ShardSum | null;
  median: TensorMap | null;
  /** The blobs that failed a check: their index in the request, and why. */
  refused: Array<{ index: number; code: ErrorCode; reason: string }>;
}

function sumPass(request: ShardSumRequest): ShardSumAnswer {
  const expected = new Map(Object.entries(request.expectedShapes).map(([name, shape]) => [name, { shape }]));
  const frozen = new Set(request.frozen);
  const deltas: Array<{ delta: TensorMap; weight: number }> = [];
  const refused: ShardSumAnswer['refused'] = [];
  request.blobs.forEach(({ blobDigest, bytes, weight }, index) => {
    try {
      deltas.push({ delta: checkUpdateBlob({ blobDigest }, bytes, expected, frozen), weight });
    } catch (error) {
      refused.push({ index, ...exclusionReason(error) });
    }
  });
  if (deltas.length === 0) return { sum: null, median: null, refused };
  return {
    sum: sumShard(deltas, { zeros: frozen }),
    median: request.withMedian
      ? medianDelta(
          deltas.map((d) => d.delta),
          { zeros: frozen },
        )
      : null,
    refused,
  };
}

/** Screen pass: the shard's trained vectors against the round's reference (shard-stats.ts). */
export type ShardStatsRequest = Parameters<typeof shardStats>[0] & { kind: 'stats' };

export type ShardMathRequest = ShardSumRequest | ShardStatsRequest;

export function shardMath(request: ShardSumRequest): ShardSumAnswer;
export function shardMath(request: ShardStatsRequest): UpdateStats[];
export function shardMath(request: ShardMathRequest): ShardSumAnswer | UpdateStats[];
export function shardMath(request: ShardMathRequest): ShardSumAnswer | UpdateStats[] {
  return request.kind === 'stats' ? shardStats(request) : sumPass(request);
}

/** Where a shard job's math runs: in this thread ({@link inProcessShardMath}) or a worker thread. */
export interface ShardMathRunner {
  sum(request: ShardSumRequest): ShardSumAnswer | Promise<ShardSumAnswer>;
  stats(request: ShardStatsRequest): UpdateStats[] | Promise<UpdateStats[]>;
}

export const inProcessShardMath: ShardMathRunner = { sum: shardMath, stats: shardMath };

/**
 * The buffers a request can hand over to the thread instead of copying: those its arrays fill
 * whole (a view into a larger buffer, e.g. a pooled Buffer, is copied; moving it would take the
 * rest of the buffer from whoever else uses it).
 */
export function requestBuffers(request: ShardMathRequest): ArrayBufferLike[] {
  const arrays =
    request.kind === 'stats' ? [...request.updates, request.reference] : request.blobs.map((b) => b.bytes);
  return arrays
    .filter((a) => a.byteOffset === 0 && a.byteLength === a.buffer.byteLength)
    .map((a) => a.buffer);
}
