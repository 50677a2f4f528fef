// Public surface of the worker: the aggregation math (usable offline by researchers and auditors)
// and the BullMQ job processor.
export * from './strategies/index.js';
export * from './privacy/index.js';
export * from './lora/index.js';
export * from './audit/index.js';
export { computeRound, type ComputeRoundInput, type ComputeRoundResult } from './job/compute-round.js';
export { loadUpdates, type LoadedUpdate, type ExcludedUpdate } from './job/load-updates.js';
export { promoteAdapter, type PromotionInput, type Promotion } from '../shared/promotion/promote-adapter.js';
export { addTensors, subtractTensors } from '../shared/promotion/tensor-math.js';
export {
  startAggregationWorker,
  type AggregationWorker,
  type AggregationWorkerOptions,
} from './aggregation-worker.js';
export { runWorker, type RunningWorker } from './run-worker.js';
export { readWorkerConfig, WorkerConfigSchema, type WorkerConfig } from './worker-config.js';
export {
  startHierarchicalWorkers,
  type HierarchicalWorkers,
  type HierarchicalWorkersOptions,
} from './hierarchical/hierarchical-workers.js';
export { processShardSum, processCombine, processShardStats } from './hierarchical/shard-jobs.js';
export {
  sumShard,
  combineShardSums,
  encodeShardSum,
  decodeShardSum,
  type ShardSum,
  type WeightedDelta,
} from './hierarchical/shard-sum.js';
export { recomputeAggregateDigest, encodeAggregate } from './job/aggregate-digest.js';
