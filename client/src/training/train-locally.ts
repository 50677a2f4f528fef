import type { TrainingPlan } from '@flotilla/protocol';
import { FlotillaError } from '@flotilla/protocol';
import * as tf from '@tensorflow/tfjs';
import type { AdaptedModel } from '../adapters/adapted-model.js';
import type { NamedTensorMap } from '../adapters/adapter-tensors.js';
import { createRng, shuffledIndices } from '../model/seeded-rng.js';
import type { ReplayMix } from '../replay/mix-replay.js';
import { mixReplay } from '../replay/mix-replay.js';
import type { LocalDataset } from './dataset.js';
import { datasetSize, gatherBatch } from './dataset.js';
import { evaluateModel } from './evaluate.js';

export interface TrainLocallyOptions {
  model: AdaptedModel;
  /** Local training examples (class-index labels). */
  data: LocalDataset;
  /** Local holdout for the validation gate; never trained on. */
  holdout: LocalDataset;
  plan: TrainingPlan;
  /** maxSteps: optimizer steps; maxSeconds: wall-clock seconds of the training loop. */
  budget: { maxSteps: number; maxSeconds: number };
  /** Replayed past examples mixed into the training set (see `mixReplay`). */
  replay?: ReplayMix;
  /** FedProx μ; overrides `plan.fedProxMu` when given. 0 = plain local training. */
  fedProxMu?: number;
  /** Seed of the batch shuffle and replay sampling. Default 0. */
  seed?: number;
}

export interface HoldoutReport {
  lossBefore: number;
  lossAfter: number;
  accuracyBefore: number;
  accuracyAfter: number;
}

export interface TrainLocallyResult {
  /** after − before for every trainable adapter tensor, by PEFT name. */
  delta: NamedTensorMap;
  steps: number;
  /** Examples processed (counting repeats across epochs). */
  examples: number;
  /** Wall-clock time of the training loop, ms. */
  trainingMs: number;
  stepsPerSecond: number;
  /** Process CPU time (user + system) spent, seconds; null where process.cpuUsage is missing. */
  cpuSeconds: number | null;
  holdout: HoldoutReport;
  /** Why training stopped. */
  stoppedBy: 'epochs' | 'maxSteps' | 'maxSeconds';
}

function cpuNow(): number | null {
  if (typeof process === 'undefined' || typeof process.cpuUsage !== 'function') return null;
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/**
 * Trains the adapter on local data with softmax cross-entropy, within the round's budget.
 * Base weights are never touched: only `model.trainableVariables()` are optimized.
 */
export function trainLocally(options: TrainLocallyOptions): TrainLocallyResult {
  const run = trainingSteps(options);
  for (;;) {
    const next = run.next();
    if (next.done) return next.value;
  }
}

/**
 * `trainLocally` that gives the event loop a turn every `yieldEveryMs` of training and stops
 * when `signal` aborts (rejecting with its reason, every tensor released): a page stays
 * responsive while it trains, and its Stop button stops training at once, not at the end.
 */
export async function trainLocallyYielding(
  options: TrainLocallyOptions,
  control: { yieldEveryMs: number; signal: AbortSignal },
): Promise<TrainLocallyResult> {
  const run = trainingSteps(options);
  let lastTurn = performance.now();
  try {
    for (;;) {
      control.signal.throwIfAborted();
      const next = run.next();
      if (next.done) return next.value;
      if (performance.now() - lastTurn >= control.yieldEveryMs) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        lastTurn = performance.now();
      }
    }
  } finally {
    run.return(undefined as never); // an abandoned run releases its optimizer and snapshots
  }
}

/** The training loop, one optimizer step per `next()`; its return value is the result. */
function* trainingSteps(options: TrainLocallyOptions): Generator<void, TrainLocallyResult, void> {
  const { model, plan, budget } = options;
  const mu = options.fedProxMu ?? plan.fedProxMu;
  const rng = createRng(options.seed ?? 0);
  const data = options.replay ? mixReplay({ fresh: options.data, ...options.replay, rng }) : options.data;
  const n = datasetSize(data);
  if (n === 0) throw new FlotillaError('BAD_REQUEST', 'no local training examples');
  const trainable = [...model.trainableVariableMap()];
  const varList = trainable.map(([, v]) => v);
  if (varList.length === 0) throw new FlotillaError('BAD_REQUEST', 'the adapter has no trainable tensors');

  const before = evaluateModel(model, options.holdout);
  const startList = varList.map((v) => tf.keep(v.clone()));
  const optimizer =
    plan.optimizer === 'adam' ? tf.train.adam(plan.learningRate) : tf.train.sgd(plan.learningRate);

  const cpuStart = cpuNow();
  const t0 = performance.now();
  const deadline = t0 + budget.maxSeconds * 1000;
  let steps = 0;
  let examples = 0;
  let stoppedBy: TrainLocallyResult['stoppedBy'] = 'epochs';
  let completed = false;
  try {
    outer: for (let epoch = 0; epoch < plan.epochs; epoch++) {
      const order = shuffledIndices(n, rng);
      for (let offset = 0; offset < n; offset += plan.batchSize) {
        if (steps >= budget.maxSteps) {
          stoppedBy = 'maxSteps';
          break outer;
        }
        if (performance.now() >= deadline) {
          stoppedBy = 'maxSeconds';
          break outer;
        }
        const indices = order.subarray(offset, Math.min(offset + plan.batchSize, n));
        const { x, y } = gatherBatch(data, indices, model.outputUnits);
        const cost = optimizer.minimize(
          () => {
            const ce = tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(y, model.logits(x));
            if (mu <= 0) return ce;
            // FedProx (Li et al. 2020): μ/2 · ‖w − w_start‖² over the adapter variables.
            const prox = tf.addN(varList.map((v, i) => tf.sum(tf.square(tf.sub(v, startList[i] ?? v)))));
            return tf.add(ce, tf.mul(prox, mu / 2));
          },
          false,
          varList,
        );
        tf.dispose([x, y]);
        cost?.dispose();
        steps += 1;
        examples += indices.length;
        yield;
      }
    }
    completed = true;
  } finally {
    optimizer.dispose();
    // Abandoned (an error, or `return()` from trainLocallyYielding): the snapshots go too.
    if (!completed) for (const snapshot of startList) snapshot.dispose();
  }
  const trainingMs = performance.now() - t0;
  const cpuEnd = cpuNow();

  const delta: NamedTensorMap = new Map();
  trainable.forEach(([name, variable], i) => {
    const snapshot = startList[i];
    if (snapshot === undefined) return;
    const values = tf.tidy(() => tf.sub(variable, snapshot).dataSync() as Float32Array);
    delta.set(name, { shape: [...variable.shape], values: Float32Array.from(values) });
    snapshot.dispose();
  });
  const after = evaluateModel(model, options.holdout);
  return {
    delta,
    steps,
    examples,
    trainingMs,
    stepsPerSecond: trainingMs > 0 ? (steps * 1000) / trainingMs : 0,
    cpuSeconds: cpuStart === null || cpuEnd === null ? null : cpuEnd - cpuStart,
    holdout: {
      lossBefore: before.loss,
      lossAfter: after.loss,
      accuracyBefore: before.accuracy,
      accuracyAfter: after.accuracy,
    },
    stoppedBy,
  };
}
