// The centralized baseline with the federated run's budget: the same base model and adapter, the
// same optimizer, learning rate and batch size, on the pooled training data of every device, for
// exactly as many gradient steps as the fleet takes. The steps are replayed in the federated
// run's own segments — one per participant per round, each as long as that device's local
// training, each from a fresh optimizer as on a device — so the only differences left are that
// the segments run one after another on pooled data, and, with `clip`, that each segment's change
// is clipped to the scenario's bound as each device's delta is.
import {
  createAdaptedModel,
  evaluateModel,
  initBackend,
  trainLocally,
  type AdaptedModel,
  type LocalDataset,
} from '@flotilla/client';
import { clipNamedToL2Norm } from '@flotilla/protocol';
import { subsetDataset } from '../data/dataset.js';
import { modelInputShape } from '../model/input-shape.js';
import { taskBaseModel } from '../model/task-base-model.js';
import type { RoundMetricsInput } from '../report/metrics.js';
import { createRng } from '../rng/random.js';
import type { Scenario } from '../scenario/schema.js';
import { scenarioSeeds } from '../scenario/seeds.js';
import { deviceSpecs } from './fleet-setup.js';
import { scenarioParticipation } from './participation.js';
import { scenarioTask, toLocalDataset } from './scenario-data.js';

/** Gradient steps one device takes in a round: E epochs of ⌈n/B⌉ batches, at most `maxSteps`. */
export function localSteps(trainExamples: number, training: Scenario['training']): number {
  return Math.min(training.maxSteps, training.epochs * Math.ceil(trainExamples / training.batchSize));
}

/**
 * The federated run's training, round by round: each participant that does not drop out trains
 * its local steps (its validation gate, if it then skips, does not give them back).
 */
export function federatedSchedule(scenario: Scenario, trainSizes: ReadonlyMap<string, number>): number[][] {
  const rng = createRng(scenarioSeeds(scenario).sampling);
  const deviceIds = [...trainSizes.keys()];
  return Array.from({ length: scenario.rounds }, (_, index) => {
    const plan = scenarioParticipation(scenario, rng, index, deviceIds);
    return plan.participants
      .filter((id) => !plan.dropouts.includes(id))
      .map((id) => localSteps(trainSizes.get(id) ?? 0, scenario.training))
      .filter((steps) => steps > 0);
  });
}

export interface CentralizedRunResult {
  label: string;
  /** Round r: the test metrics after the steps of the federated run's first r rounds. */
  metrics: RoundMetricsInput[];
  /** Gradient steps taken (= the federated run's). */
  steps: number;
  /** Pooled training examples (every device's, holdouts excluded). */
  examples: number;
  /** The clip bound applied to each segment, or null. */
  clipNorm: number | null;
  /** The budget in a sentence, for reports. */
  budget: string;
  baseDigest: string;
  backend: string;
  wallMs: number;
}

function evaluateOn(model: AdaptedModel, test: LocalDataset): { accuracy: number; loss: number } {
  const { accuracy, loss } = evaluateModel(model, test);
  return { accuracy, loss };
}

/**
 * Trains the centralized baseline of `scenario` (see the header) and evaluates it on the
 * scenario's test set after each round's worth of steps.
 */
export async function centralizedRun(
  scenario: Scenario,
  options: { cacheDir: string; clip: boolean },
): Promise<CentralizedRunResult> {
  const started = Date.now();
  const backend = await initBackend({ logger: () => undefined });
  const task = scenarioTask(scenario);
  const base = await taskBaseModel({ scenario, task, stateDir: options.cacheDir });
  const inputShape = modelInputShape(base.model, task.pool.dim);
  const specs = deviceSpecs(scenario, task);
  const pooled = subsetDataset(
    task.pool,
    specs.flatMap((s) => s.trainIndices),
  );
  const schedule = federatedSchedule(
    scenario,
    new Map(specs.map((s) => [s.deviceId, s.trainIndices.length])),
  );
  const clipNorm = options.clip && scenario.clipNorm !== 'none' ? scenario.clipNorm : null;
  const test = toLocalDataset(task.test, inputShape);
  const noHoldout: LocalDataset = {
    xs: new Float32Array(0),
    ys: new Int32Array(0),
    featureShape: inputShape,
  };
  const seeds = scenarioSeeds(scenario);
  const model = createAdaptedModel({
    base: base.model,
    spec: { ...scenario.adapter, seed: seeds.model },
  });
  const metrics: RoundMetricsInput[] = [];
  const record = (round: number, segments: number) =>
    metrics.push({
      round,
      ...evaluateOn(model, test),
      participants: segments,
      bytesUp: 0,
      bytesDown: 0,
      epsilon: null,
      decision: 'COMMITTED',
    });
  let steps = 0;
  let segment = 0;
  try {
    record(0, 0);
    schedule.forEach((round, index) => {
      for (const length of round) {
        const result = trainLocally({
          model,
          data: toLocalDataset(pooled, inputShape),
          holdout: noHoldout,
          plan: {
            epochs: scenario.training.epochs,
            batchSize: scenario.training.batchSize,
            learningRate: scenario.training.learningRate,
            fedProxMu: 0,
            optimizer: scenario.training.optimizer,
          },
          budget: { maxSteps: length, maxSeconds: 3600 },
          seed: (seeds.training * 1_000_003 + segment++) >>> 0,
        });
        steps += result.steps;
        if (clipNorm !== null) {
          // Replace the segment's change by its clipped version, as a device's delta is clipped.
          const raw = new Map([...result.delta].map(([name, t]) => [name, t.values]));
          const clipped = clipNamedToL2Norm(raw, clipNorm);
          if (clipped.clipped)
            model.applyDelta(
              new Map(
                [...result.delta].map(([name, t]) => [
                  name,
                  {
                    shape: t.shape,
                    values: (clipped.tensors.get(name) ?? t.values).map((v, i) => v - (t.values[i] ?? 0)),
                  },
                ]),
              ),
            );
        }
      }
      record(index + 1, round.length);
    });
  } finally {
    model.dispose();
    base.model.dispose();
  }
  const label =
    clipNorm === null ? 'centralized, same steps' : `centralized, same steps, clipped to ${clipNorm}`;
  return {
    label,
    metrics,
    steps,
    examples: pooled.n,
    clipNorm,
    budget:
      `${steps.toLocaleString('en-US')} gradient steps, as many as the fleet takes (each participant's ` +
      `E·⌈n/B⌉ local steps, at most maxSteps, summed over rounds), on the pooled training data of all ` +
      `${specs.length} devices (${pooled.n.toLocaleString('en-US')} examples); same model, adapter, ` +
      `optimizer, learning rate and batch size; one segment per participant per round, fresh optimizer ` +
      `each${clipNorm === null ? '' : `, each segment's change clipped to L2 norm ${clipNorm}`}`,
    baseDigest: base.digest,
    backend: backend.name,
    wallMs: Date.now() - started,
  };
}
