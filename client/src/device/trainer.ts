import type { RoundPlan, TaskDefinition, Telemetry, UpdateSkip } from '@flotilla/protocol';
import type { NamedTensors } from '../cache/adapter-tensors.js';
import type { DeviceLogger } from './logger.js';

/** What the runtime hands a trainer for one round. */
export interface TrainContext {
  deviceId: string;
  /** The base model bundle (`tfjs-layers-bundle`), already verified against `plan.baseModelDigest`. */
  baseModel: Uint8Array;
  /**
   * Adapter tensors of `plan.adapter.version` (PEFT names, lora_A [r, in], lora_B [out, r]),
   * verified against the signed manifest; an empty map for version 0 (the trainer initialises
   * the adapter from `plan.adapter.spec.seed`, e.g. with `initialAdapterTensors`).
   */
  adapter: NamedTensors;
  /** Aborted when the device stops or the round deadline passes. */
  signal: AbortSignal;
  logger: DeviceLogger;
}

/** A trained update: the raw delta (before clipping; the runtime clips to `plan.clipNorm`). */
export interface TrainedUpdate {
  kind: 'update';
  /** Trained adapter minus `context.adapter`, with the same names and shapes. */
  delta: NamedTensors;
  /**
   * Distinct local examples the delta was trained on: the FedAvg weight, at most the plan's
   * `budget.maxSteps × training.batchSize` (the coordinator refuses more with `EXAMPLES_EXCEEDED`
   * unless the task sets another `policy.maxExamplesPerUpdate`). Must be ≥ 1.
   */
  numExamples: number;
  /** Optimizer steps taken. */
  steps: number;
  /** tfjs backend that trained ('tensorflow', 'wasm', 'cpu', 'webgl'); default 'cpu'. */
  backend?: string;
  /** Local validation-gate measurements, reported in telemetry. */
  holdout?: Telemetry['holdout'];
}

/** A trainer that declines to send an update (validation gate, budget, no data). */
export interface SkippedUpdate {
  kind: 'skip';
  reason: UpdateSkip['reason'];
  detail: string;
  steps?: number;
  backend?: string;
  holdout?: Telemetry['holdout'];
}

export type TrainOutcome = TrainedUpdate | SkippedUpdate;

/** What `FlotillaDevice.start()` hands a trainer before the first round. */
export interface PrepareContext {
  /** The task, as signed by the coordinator (signature checked against the pinned key). */
  task: TaskDefinition;
  /** The task's base model bundle (`tfjs-layers-bundle`), verified against its digest. */
  baseModel: Uint8Array;
  logger: DeviceLogger;
}

/**
 * Local training, injected into `FlotillaDevice`: the default is `TfjsTrainer`; simulations plug
 * in their own (e.g. attackers that scale or flip their delta).
 */
export interface Trainer {
  train(plan: RoundPlan, context: TrainContext): Promise<TrainOutcome>;
  /**
   * Optional check when the device starts, before its first check-in: throw (a FlotillaError
   * `BAD_REQUEST` naming the problem) when the local data cannot train this task's model, so
   * `start()` rejects instead of every round failing.
   */
  prepare?(context: PrepareContext): Promise<void>;
}
