import { sha256Hex, type RoundPlan } from '@flotilla/protocol';
import type * as tf from '@tensorflow/tfjs';
import { createAdaptedModel } from '../adapters/adapted-model.js';
import { initBackend, type BackendName } from '../backend/backend.js';
import { loadBaseModel } from '../model/base-bundle.js';
import type { BaseModelPool } from '../model/base-model-pool.js';
import type { ReplayMix } from '../replay/mix-replay.js';
import { assertDataFitsModel, modelIo } from '../training/data-fit.js';
import { datasetSize, type LocalDataset } from '../training/dataset.js';
import { trainLocally, trainLocallyYielding } from '../training/train-locally.js';
import { validationGate } from '../training/validation-gate.js';
import type { PrepareContext, TrainContext, TrainOutcome, Trainer } from './trainer.js';

/** The local data a round trains on: train split and a holdout the validation gate scores. */
export interface LocalData {
  train: LocalDataset;
  holdout: LocalDataset;
  /** Replayed past examples mixed into training (see `mixReplay`). */
  replay?: ReplayMix;
}

export interface TfjsTrainerOptions {
  /** The device's data, fixed or asked for at the start of every round. */
  data: LocalData | ((plan: RoundPlan) => LocalData | Promise<LocalData>);
  /** tfjs backend tried first (tensorflow, then wasm, then cpu are tried anyway). Default 'tensorflow'. */
  preferBackend?: BackendName;
  /** Seed of the batch shuffle; mixed with the round number so rounds differ. Default 0. */
  seed?: number;
  /**
   * Milliseconds of training between turns given to the event loop; training then also stops
   * as soon as the device stops (or the round's deadline passes) instead of at its end. For
   * pages, which must stay responsive (`startBrowserDevice` uses 50). Default: none, one go.
   */
  yieldEveryMs?: number;
  /**
   * Base models shared with other trainers of this process (simulated devices). Default: the
   * trainer loads and keeps its own.
   */
  baseModels?: BaseModelPool;
}

/**
 * The default trainer: loads the base bundle (kept across rounds while its digest stays the
 * same), wraps it with the plan's adapter (`createAdaptedModel`), loads the adapter version the
 * plan starts from, trains within the plan's budget (`trainLocally`) and applies the validation
 * gate on the local holdout: a failing update is a skip with reason `validation-gate`. Data that
 * does not fit the base model (feature shape, labels) is refused with `BAD_REQUEST` when the
 * device starts (fixed data) or when the round starts (data from a function).
 */
export class TfjsTrainer implements Trainer {
  private base: { digest: string; model: tf.LayersModel } | null = null;

  constructor(private readonly options: TfjsTrainerOptions) {}

  async prepare(context: PrepareContext): Promise<void> {
    if (typeof this.options.data === 'function') return; // known only when a round asks for it
    await initBackend({
      ...(this.options.preferBackend ? { prefer: this.options.preferBackend } : {}),
      logger: (line) => context.logger.info({}, line),
    });
    assertFits(this.options.data, await this.baseModel(context.baseModel));
  }

  async train(plan: RoundPlan, context: TrainContext): Promise<TrainOutcome> {
    const backend = await initBackend({
      ...(this.options.preferBackend ? { prefer: this.options.preferBackend } : {}),
      logger: (line) => context.logger.info({}, line),
    });
    const data = typeof this.options.data === 'function' ? await this.options.data(plan) : this.options.data;
    const examples = datasetSize(data.train);
    if (examples === 0)
      return { kind: 'skip', reason: 'no-data', detail: 'no local training examples', backend: backend.name };
    const base = await this.baseModel(context.baseModel);
    assertFits(data, base);
    const model = createAdaptedModel({ base, spec: plan.adapter.spec });
    try {
      if (context.adapter.size > 0) model.loadAdapterTensors(context.adapter);
      context.signal.throwIfAborted();
      const secondsLeft = Math.max(0.001, (plan.deadline - Date.now()) / 1000);
      const run = {
        model,
        data: data.train,
        holdout: data.holdout,
        plan: plan.training,
        budget: { maxSteps: plan.budget.maxSteps, maxSeconds: Math.min(plan.budget.maxSeconds, secondsLeft) },
        seed: ((this.options.seed ?? 0) + plan.roundNumber) >>> 0,
        ...(data.replay ? { replay: data.replay } : {}),
      };
      const { yieldEveryMs } = this.options;
      const result =
        yieldEveryMs === undefined
          ? trainLocally(run)
          : await trainLocallyYielding(run, { yieldEveryMs, signal: context.signal });
      const gate = validationGate({
        lossBefore: result.holdout.lossBefore,
        lossAfter: result.holdout.lossAfter,
        tolerance: plan.validationTolerance,
      });
      if (result.examples === 0)
        return {
          kind: 'skip',
          reason: 'budget-exhausted',
          detail: 'no training step fit in the round budget',
          steps: 0,
          backend: backend.name,
          holdout: result.holdout,
        };
      if (!gate.pass)
        return {
          kind: 'skip',
          reason: 'validation-gate',
          detail: gate.reason,
          steps: result.steps,
          backend: backend.name,
          holdout: result.holdout,
        };
      return {
        kind: 'update',
        delta: result.delta,
        // The examples the delta rests on: all of them once an epoch completed, else those the
        // step budget reached (never more than maxSteps × batchSize, the coordinator's default cap).
        numExamples: Math.min(examples, result.examples),
        steps: result.steps,
        backend: backend.name,
        holdout: result.holdout,
      };
    } finally {
      model.dispose();
    }
  }

  /** Releases the cached base model (a pooled one stays with its pool). */
  dispose(): void {
    this.base?.model.dispose();
    this.base = null;
  }

  private async baseModel(bytes: Uint8Array): Promise<tf.LayersModel> {
    if (this.options.baseModels) return this.options.baseModels.get(bytes);
    const digest = sha256Hex(bytes);
    if (this.base?.digest === digest) return this.base.model;
    this.dispose();
    const model = await loadBaseModel(bytes);
    this.base = { digest, model };
    return model;
  }
}

function assertFits(data: LocalData, base: tf.LayersModel): void {
  const io = modelIo(base);
  assertDataFitsModel(data.train, io, 'data.train');
  assertDataFitsModel(data.holdout, io, 'data.holdout');
}
