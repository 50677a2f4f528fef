/**
 * Aggregation strategies: pure functions on flattened `Float32Array` deltas (no tfjs).
 *
 * Every update is one flat vector (`flattenTensors` fixes the order: tensor names sorted) with a
 * weight, normally its number of examples. `aggregate` dispatches on `StrategyConfig.name`:
 * mean-type strategies return the aggregated delta; server optimizers (FedAvgM, FedAdam, FedYogi,
 * FedAdagrad) return the server step to add to the current adapter plus the state to persist for
 * the next round. Choices where frameworks disagree are options in `StrategyExtensions`.
 *
 * | name            | follows                                   | weights used | `selected`            |
 * | --------------- | ----------------------------------------- | ------------ | --------------------- |
 * | fedavg          | McMahan et al. 2017                       | yes          | all                   |
 * | fedavgm         | Hsu et al. 2019 (Flower FedAvgM)          | yes          | all                   |
 * | fedadam/yogi/adagrad | Reddi et al. 2021, Algorithm 2       | yes          | all                   |
 * | median          | Yin et al. 2018 (Flower FedMedian)        | no           | all                   |
 * | trimmed-mean    | Yin et al. 2018 (Flower FedTrimmedAvg)    | no           | all                   |
 * | krum            | Blanchard et al. 2017 (Flower Krum)       | no           | the chosen update     |
 * | multi-krum      | Blanchard et al. 2017 (Flower Krum, keep) | configurable | the kept updates      |
 * | bulyan          | El Mhamdi et al. 2018 (Flower Bulyan)     | no           | the θ selected        |
 * | norm-bounding   | Sun et al. 2019 (TFF clipping / zeroing)  | yes          | all but zeroed ones   |
 *
 * Accumulation is float64 throughout (the FedAvg fold in a WebAssembly SIMD kernel), rounded once
 * to f32 at the end. The coordinate-wise strategies sort each coordinate's column with a comparator
 * network generated for the update count, a block of coordinates side by side in SIMD lanes
 * (column-sort.ts); the results are bit for bit those of sorting each column on its own.
 */
import { STRATEGY_REGISTRY } from './registry.js';
import type { AggregationConfig, AggregationResult, ServerOptimizerState, WeightedUpdate } from './types.js';

export type {
  AggregationConfig,
  AggregationResult,
  ServerOptimizerState,
  StrategyExtensions,
  WeightedUpdate,
} from './types.js';
export {
  StreamingFedAvg,
  accumulatorFootprint,
  type StreamingFedAvgOptions,
  type AddOptions,
  type BatchEntry,
} from './streaming-fedavg.js';
export { KernelArena, updateAllocator } from './kernel-arena.js';
export { simdAvailable } from './simd-kernel.js';
export { measureFedAvgThroughput, type ThroughputOptions, type ThroughputReport } from './throughput.js';
export {
  flattenTensors,
  unflattenTensors,
  assertSameLayout,
  type NamedTensor,
  type TensorLayout,
  type TensorSlot,
} from './flatten.js';
export { encodeServerOptimizerState, decodeServerOptimizerState } from './server-state.js';
export { aggregateFedAvg } from './fedavg.js';
export { aggregateFedAvgM, type FedAvgMOptions } from './fedavgm.js';
export {
  aggregateAdaptive,
  type AdaptiveOptimizer,
  type AdaptiveOptimizerOptions,
} from './adaptive-optimizers.js';
export { aggregateMedian } from './median.js';
export { aggregateTrimmedMean, type TrimmedMeanOptions } from './trimmed-mean.js';
export { aggregateKrum, type KrumOptions } from './krum.js';
export { aggregateBulyan, type BulyanOptions } from './bulyan.js';
export { aggregateNormBounded, type NormBoundingOptions } from './norm-bounding.js';
export { STRATEGY_REGISTRY, byzantineTolerance, type StrategyImplementation } from './registry.js';

/**
 * Aggregates one round. `state` is the server optimizer state from the previous round (omit it on
 * the first round); the returned `state` is set only for server optimizers. Throws FlotillaError:
 * BAD_REQUEST (no updates, bad weights, parameters the strategy cannot work with, state of another
 * optimizer), SHAPE_MISMATCH (updates or state of different lengths), NON_FINITE (NaN/Inf result).
 */
export function aggregate(
  config: AggregationConfig,
  updates: readonly WeightedUpdate[],
  state?: ServerOptimizerState,
): { result: AggregationResult; state?: ServerOptimizerState } {
  return STRATEGY_REGISTRY[config.name].aggregate(config, updates, state);
}
