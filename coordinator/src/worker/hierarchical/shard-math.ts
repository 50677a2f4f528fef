// The math of both shard passes as requests a worker thread answers (stats-thread.ts), or this
// thread when there is none: the I/O stays in shard-jobs.ts, on the event loop that renews locks.
import { FlotillaError, at } from '@flotilla/protocol';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import type { UpdateStats } from '../audit/reference.js';
import { medianDelta, shardStats } from './shard-stats.js';
import { sumShard, type ShardSum } from './shard-sum.js';

/** Sum pass: Σ w·x of the shard's deltas and, when the round is screened, their median. */
export interface ShardSumRequest {
  kind: 'sum';
  deltas: TensorMap[];
  /** FedAvg weight of each delta. */
  weights: number[];
  withMedian: boolean;
  /** Tensors that are zero in every delta (frozen): their sum and median are zero. */
  zeros: string[];
}

export interface ShardSumAnswer {
  sum: ShardSum;
  median: TensorMap | null;
}

/** Screen pass: the shard's trained vectors against the round's reference (shard-stats.ts). */
export type ShardStatsRequest = Parameters<typeof shardStats>[0] & { kind: 'stats' };

export type ShardMathRequest = ShardSumRequest | ShardStatsRequest;

export function shardMath(request: ShardSumRequest): ShardSumAnswer;
export function shardMath(request: ShardStatsRequest): UpdateStats[];
export function shardMath(request: ShardMathRequest): ShardSumAnswer | UpdateStats[];
export function shardMath(request: ShardMathRequest): ShardSumAnswer | UpdateStats[] {
  if (request.kind === 'stats') return shardStats(request);
  const { deltas, weights } = request;
  if (weights.length !== deltas.length)
    throw new FlotillaError('INTERNAL', `${weights.length} weights for ${deltas.length} deltas`);
  const zeros = new Set(request.zeros);
  return {
    sum: sumShard(
      deltas.map((delta, i) => ({ delta, weight: at(weights, i) })),
      { zeros },
    ),
    median: request.withMedian ? medianDelta(deltas, { zeros }) : null,
  };
}

/** Where a shard job's math runs: in this thread ({@link inProcessShardMath}) or a worker thread. */
export interface ShardMathRunner {
  sum(request: ShardSumRequest): ShardSumAnswer | Promise<ShardSumAnswer>;
  stats(request: ShardStatsRequest): UpdateStats[] | Promise<UpdateStats[]>;
}

export const inProcessShardMath: ShardMathRunner = { sum: shardMath, stats: shardMath };

/** The buffers of a request's vectors, which the job hands over to the thread instead of copying. */
export function requestBuffers(request: ShardMathRequest): ArrayBufferLike[] {
  if (request.kind === 'stats') return [...request.updates, request.reference].map((v) => v.buffer);
  return request.deltas.flatMap((d) => [...d.values()].map((t) => t.values.buffer));
}
