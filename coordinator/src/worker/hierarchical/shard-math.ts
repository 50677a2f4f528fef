// The math of both shard passes as requests a worker thread answers (stats-thread.ts), or this
// thread when there is none: the I/O stays in shard-jobs.ts, on the event loop that renews locks.
import { FlotillaError, sha256Hex, type ErrorCode } from '@flotilla/protocol';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import { checkUpdateBlob, exclusionReason, nonFiniteError, nonFiniteTensor } from '../job/load-updates.js';
import type { PeerStats } from '../audit/reference.js';
import {
  medianDelta,
  medianFromTrained,
  referenceCosines,
  shardScreen,
  summedTrainedVector,
  trainedVector,
} from './shard-stats.js';
import { sumIsFinite, sumShard, type ShardSum } from './shard-sum.js';

/**
 * Sum pass: the shard's blobs as read from the store, checked and decoded here (digest, names and
 * shapes, frozen zeros, finite values: load-updates.ts), then Σ w·x of those that pass and, when
 * the round is screened, their median and each one's stats against its peers (shard-stats.ts).
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
  /** The round is screened: each update's stats against its peers too. */
  withPeers: boolean;
}

export interface ShardSumAnswer {
  /** Null when no blob passed the checks. */
  sum: ShardSum | null;
  median: TensorMap | null;
  /** With `withPeers`: each summed update's stats against the shard's other summed updates, in order. */
  peers: PeerStats[] | null;
  /** The blobs that failed a check: their index in the request, and why. */
  refused: Array<{ index: number; code: ErrorCode; reason: string }>;
}

function sumPass(request: ShardSumRequest): ShardSumAnswer {
  const expected = new Map(Object.entries(request.expectedShapes).map(([name, shape]) => [name, { shape }]));
  const frozen = new Set(request.frozen);
  let deltas: Array<{ delta: TensorMap; weight: number; index: number }> = [];
  const refused: ShardSumAnswer['refused'] = [];
  // Every use below only reads the deltas: no copies of the blobs' values, one array of zeros.
  const readOnly = { zeros: new Map<string, Float32Array>() };
  request.blobs.forEach(({ blobDigest, bytes, weight }, index) => {
    try {
      const delta = checkUpdateBlob({ blobDigest }, bytes, expected, frozen, {
        readOnly,
        // NaN or ±Inf shows in the sum, unless the weight is 0 (the fold leaves such terms out).
        skipFiniteCheck: weight > 0,
      });
      deltas.push({ delta, weight, index });
    } catch (error) {
      refused.push({ index, ...exclusionReason(error) });
    }
  });
  let sum = deltas.length > 0 ? sumShard(deltas, { zeros: frozen }) : null;
  if (sum !== null && !sumIsFinite(sum)) {
    // Some delta holds NaN or ±Inf (finite f32 values times finite weights cannot overflow a
    // float64 sum of a shard): exclude them as checkUpdateBlob would have, and sum the rest.
    const finite = deltas.filter(({ delta, index }) => {
      const name = nonFiniteTensor(delta, expected);
      if (name !== null) refused.push({ index, ...exclusionReason(nonFiniteError(name)) });
      return name === null;
    });
    if (finite.length < deltas.length) {
      deltas = finite;
      sum = deltas.length > 0 ? sumShard(deltas, { zeros: frozen }) : null;
      refused.sort((a, b) => a.index - b.index);
    }
  }
  if (sum === null) return { sum: null, median: null, peers: null, refused };
  const screen = request.withPeers
    ? shardScreen(
        deltas.map((d) => trainedVector(d.delta, frozen)),
        { withMedian: request.withMedian },
      )
    : null;
  const first = deltas[0]?.delta;
  let median: TensorMap | null = null;
  // The screen's sorted columns hold the median already; without a screen it is taken here.
  if (screen?.median && first) median = medianFromTrained(screen.median, first, frozen);
  else if (request.withMedian)
    median = medianDelta(
      deltas.map((d) => d.delta),
      { zeros: frozen },
    );
  return { sum, median, peers: screen?.peers ?? null, refused };
}

/**
 * Second pass: the bytes of the shard's summed updates read again, compared with their digests
 * here (the event loop only reads them: this pass's math is light, and hashing on the loop made it
 * the bottleneck), and each update's cosine to the round's reference (its trained tensors,
 * flattened), in order.
 */
export interface ShardStatsRequest {
  kind: 'stats';
  blobs: Array<{ updateId: string; blobDigest: string; bytes: Uint8Array }>;
  reference: Float32Array;
  frozen: string[];
}

function statsPass(request: ShardStatsRequest): number[] {
  const frozen = new Set(request.frozen);
  for (const { updateId, blobDigest, bytes } of request.blobs)
    // The bytes every check passed in the sum pass, or the update fails the round.
    if (sha256Hex(bytes) !== blobDigest)
      throw new FlotillaError('DIGEST_MISMATCH', `update ${updateId} changed after it was summed`);
  return referenceCosines(
    request.blobs.map((blob) => summedTrainedVector(blob.bytes, frozen)),
    request.reference,
  );
}

export type ShardMathRequest = ShardSumRequest | ShardStatsRequest;

export function shardMath(request: ShardSumRequest): ShardSumAnswer;
export function shardMath(request: ShardStatsRequest): number[];
export function shardMath(request: ShardMathRequest): ShardSumAnswer | number[];
export function shardMath(request: ShardMathRequest): ShardSumAnswer | number[] {
  return request.kind === 'stats' ? statsPass(request) : sumPass(request);
}

/** Where a shard job's math runs: in this thread ({@link inProcessShardMath}) or a worker thread. */
export interface ShardMathRunner {
  sum(request: ShardSumRequest): ShardSumAnswer | Promise<ShardSumAnswer>;
  stats(request: ShardStatsRequest): number[] | Promise<number[]>;
}

export const inProcessShardMath: ShardMathRunner = { sum: shardMath, stats: shardMath };

/**
 * The buffers a request can hand over to the thread instead of copying: those its arrays fill
 * whole (a view into a larger buffer, e.g. a pooled Buffer, is copied; moving it would take the
 * rest of the buffer from whoever else uses it).
 */
export function requestBuffers(request: ShardMathRequest): ArrayBufferLike[] {
  const arrays = [
    ...request.blobs.map((b) => b.bytes),
    ...(request.kind === 'stats' ? [request.reference] : []),
  ];
  return arrays
    .filter((a) => a.byteOffset === 0 && a.byteLength === a.buffer.byteLength)
    .map((a) => a.buffer);
}
