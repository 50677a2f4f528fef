// What every step of an aggregate job works with: the worker's dependencies (built once per
// process) and the round in hand. Types only, so any step may import them without importing
// another step.
import type { Redis } from 'ioredis';
import type { SigningKeyPair, TaskDefinition } from '@flotilla/protocol';
import type { AdapterRegistry } from '../../shared/adapter-registry.js';
import type { BlobStore } from '../../shared/blob-store/index.js';
import type { HierarchicalOptions } from '../../shared/hierarchical-flow.js';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import type { AggregateJobData } from '../../shared/queues.js';
import type { TaskRegistry } from '../../shared/task-registry.js';
import type { HoldoutMetrics } from '../audit/index.js';
import type { ComputeRoundInput, ComputeRoundResult } from './compute-round.js';
import type { WorkerRoundLog } from './worker-round-log.js';
import type { TaskWorkerState } from './worker-state.js';

/** What the job processor needs; the BullMQ wrapper builds it once per worker process. */
export interface AggregateJobDeps {
  redis: Redis;
  prefix: string;
  blobs: BlobStore;
  tasks: TaskRegistry;
  adapters: AdapterRegistry;
  signingKey: SigningKeyPair;
  roundLog: WorkerRoundLog;
  /** Evaluates an adapter on a server holdout (tfjs, plugged in by the caller); optional. */
  evaluate?: (task: TaskDefinition, adapter: TensorMap) => Promise<HoldoutMetrics>;
  /** Seed for DP noise (simulations, tests). Without it noise comes from the platform CSPRNG. */
  noiseSeed?: string;
  /** Runs the math off the event loop (a worker thread); defaults to in-process. */
  compute?: (input: Omit<ComputeRoundInput, 'rng'>, seed: string | null) => Promise<ComputeRoundResult>;
  /** Test hook (crash-recovery tests): awaited after the aggregation record, before the audit. */
  afterAggregation?: (roundId: string) => Promise<void>;
  /** When rounds aggregate in shard jobs (only with `steps`; see shared/hierarchical-flow.ts). */
  hierarchical?: HierarchicalOptions;
}

/** One round in hand: its job, task, the adapter it started from and the task's worker state. */
export interface RoundContext {
  deps: AggregateJobDeps;
  task: TaskDefinition;
  job: AggregateJobData;
  /** Adapter version `job.parentVersion`. */
  current: TensorMap;
  state: TaskWorkerState;
  /** When the job was enqueued: the same on every retry, so it dates the manifest. */
  enqueuedAt: number;
}
