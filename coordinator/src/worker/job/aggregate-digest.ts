import {
  FlotillaError,
  StrategyConfigSchema,
  decodeDeltaFile,
  encodeFloat32Tensors,
  isServerOptimizer,
  parseAdapterTensorName,
  screenedOutIndices,
  sha256Hex,
  type RoundLogEventOf,
} from '@flotilla/protocol';
import type { BlobStore } from '../../shared/blob-store/index.js';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import { hierarchicalMean } from '../hierarchical/shard-sum.js';
import { aggregate, flattenTensors, unflattenTensors, type TensorLayout } from '../strategies/index.js';

/**
 * The bytes behind an aggregation record's `aggregateDigest`: F32 safetensors of the aggregate
 * step, i.e. the strategy's output over the tensors devices train: every tensor of the
 * participants' deltas, except `lora_A` under the `ffa` rule (A is frozen, so it is not part of
 * the step, whether a device sent its zero delta or left it out). Metadata `flotilla.round`.
 */
export function encodeAggregate(aggregateTensors: TensorMap, roundId: string): Uint8Array {
  return encodeFloat32Tensors(aggregateTensors, { 'flotilla.round': roundId }, 'F32');
}

/** The tensors of a delta that take part in the aggregate (see {@link encodeAggregate}). */
function trainedTensors(delta: TensorMap, loraRule: string): TensorMap {
  if (loraRule !== 'ffa') return delta;
  return new Map([...delta].filter(([name]) => parseAdapterTensorName(name)?.kind !== 'lora_A'));
}

/** `strategyOptions.screenedOut` as participant indices; malformed, the record cannot say what ran. */
function screenedOutOf(record: RoundLogEventOf<'aggregation'>): Set<number> {
  const value = record.strategyOptions.screenedOut;
  const indices = screenedOutIndices(value, record.participants.length);
  if (indices === null)
    throw new FlotillaError(
      'BAD_REQUEST',
      `strategyOptions.screenedOut ${JSON.stringify(value)} does not name participants of the record`,
    );
  return new Set(indices);
}

/**
 * Recomputes an aggregation record's digest from the retained participant deltas, with the same
 * strategy code the worker ran. Returns null when the log alone cannot determine the result:
 * Gaussian noise was added, a server optimizer carried state, or the product LoRA rule ran.
 * A hierarchical round (`hierarchicalShardCounts` in the strategy options) is re-run in the
 * same shards, so its digest is reproduced too. Participants in `screenedOut` are left out.
 * Throws BLOB_MISSING when a retained delta is gone (an auditor must hear of it).
 */
export async function recomputeAggregateDigest(
  record: RoundLogEventOf<'aggregation'>,
  blobs: BlobStore,
): Promise<string | null> {
  if (record.noiseMultiplier > 0 || record.loraRule === 'product') return null;
  const options = record.strategyOptions;
  const config = StrategyConfigSchema.safeParse({
    name: record.strategy,
    ...(typeof options.byzantine === 'number' ? { byzantine: options.byzantine } : {}),
    ...(typeof options.beta === 'number' ? { beta: options.beta } : {}),
    ...(typeof options.keep === 'number' ? { keep: options.keep } : {}),
    ...(typeof options.serverLearningRate === 'number'
      ? { serverLearningRate: options.serverLearningRate }
      : {}),
    ...(typeof options.normBound === 'number' ? { normBound: options.normBound } : {}),
  });
  if (!config.success || isServerOptimizer(config.data.name)) return null;
  const screenedOut = screenedOutOf(record);
  let layout: TensorLayout | undefined;
  const updates = [];
  const deltas = [];
  for (const [index, participant] of record.participants.entries()) {
    // Left out of the aggregate by the drift screen (audit.excludeFlagged): the strategy never saw it.
    if (screenedOut.has(index)) continue;
    const bytes = await blobs.get(participant.blobDigest);
    if (!bytes)
      throw new FlotillaError('BLOB_MISSING', `retained delta ${participant.blobDigest} is missing`);
    const delta = trainedTensors(decodeDeltaFile(bytes).tensors, record.loraRule);
    const flat = flattenTensors(delta, layout ? { expected: layout } : {});
    layout = flat.layout;
    updates.push({ values: flat.values, weight: participant.weight });
    deltas.push({ delta, weight: participant.weight });
  }
  if (!layout) return null;
  // A hierarchical round's sums were grouped by shard: re-run them grouped the same way.
  const counts = options.hierarchicalShardCounts;
  if (typeof counts === 'string')
    return sha256Hex(
      encodeAggregate(hierarchicalMean(deltas, counts.split(',').map(Number)), record.roundId),
    );
  const { result } = aggregate(config.data, updates);
  return sha256Hex(encodeAggregate(unflattenTensors(result.values, layout), record.roundId));
}
