import type * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '@flotilla/client';
import { createMlp } from '../model/mlp.js';
import { taskBaseModel } from '../model/task-base-model.js';
import { createRng } from '../rng/random.js';
import { parseScenario } from '../scenario/load.js';
import type { Scenario } from '../scenario/schema.js';
import { deviceSpecs } from './fleet-setup.js';
import { participationFor } from './participation.js';
import { scenarioTask } from './scenario-data.js';
import { scenarioSeeds } from '../scenario/seeds.js';

// A small synthetic task, so each base model pre-trains in a moment.
const scenario = (seeds: string, seed = 1, pretrained = true): Scenario =>
  parseScenario(`
name: seeds
seed: ${seed}
seeds: ${seeds}
dataset: synthetic
data: { syntheticExamples: 300, syntheticDim: 8 }
model: { hidden: 8, baseEpochs: 1, pretrained: ${pretrained} }
devices: 6
devicesPerRound: 3
minReports: 2
partition: { scheme: dirichlet, alpha: 0.5, maxExamplesPerDevice: 40 }
behaviour: { byzantineFraction: 0.34, attack: sign-flip }
`);

const dir = mkdtempSync(join(tmpdir(), 'flotilla-seeds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Everything each seed decides, as comparable values. */
async function outcome(s: Scenario) {
  await initBackend({ logger: () => undefined });
  const task = scenarioTask(s);
  const base = await taskBaseModel({ scenario: s, task, stateDir: dir });
  base.model.dispose();
  const specs = deviceSpecs(s, task);
  const ids = specs.map((d) => d.deviceId);
  const schedule = [0, 1, 2].map(
    (index) =>
      participationFor({
        rng: createRng(scenarioSeeds(s).sampling),
        index,
        deviceIds: ids,
        perRound: s.devicesPerRound,
        dropoutProbability: 0,
        offlineRounds: [],
      }).participants,
  );
  return {
    base: base.digest,
    data: Array.from(task.pool.ys.slice(0, 50)).join(',') + String(task.pool.xs[7]),
    partition: specs.map((d) => [d.trainIndices, d.holdoutIndices, d.byzantine, d.seedKey]),
    sampling: schedule,
    training: specs.map((d) => d.seed),
  };
}

type Outcome = Awaited<ReturnType<typeof outcome>>;

/** Asserts that the run with these `seeds` differs from the one with none in `moved` alone. */
async function expectOnlyMoved(reference: Outcome, seeds: string, moved: keyof Outcome): Promise<void> {
  const other = await outcome(scenario(seeds));
  expect(other[moved]).not.toEqual(reference[moved]);
  expect({ ...other, [moved]: null }).toEqual({ ...reference, [moved]: null });
}

describe('separate seeds', () => {
  it('changing the partition seed leaves the base model and the data identical, and moves only the partition', async () => {
    await expectOnlyMoved(await outcome(scenario('{}')), '{ partition: 2 }', 'partition');
  });

  it('changing the model seed changes only the base model; the data seed changes the data and the base trained on it', async () => {
    const reference = await outcome(scenario('{}'));
    await expectOnlyMoved(reference, '{ model: 2 }', 'base');
    const data = await outcome(scenario('{ data: 2 }'));
    expect(data.data).not.toBe(reference.data);
    expect(data.base).not.toBe(reference.base);
  });

  it('the sampling and training seeds move the schedule and the batch order only', async () => {
    const reference = await outcome(scenario('{}'));
    await expectOnlyMoved(reference, '{ sampling: 2 }', 'sampling');
    await expectOnlyMoved(reference, '{ training: 2 }', 'training');
  });

  it('`seed` is the default of every stream: pinning them all makes `seed` irrelevant', async () => {
    const pinned = '{ model: 1, data: 1, partition: 1, sampling: 1, training: 1, noise: 1 }';
    expect(await outcome(scenario(pinned, 9))).toEqual(await outcome(scenario('{}', 1)));
    expect(scenarioSeeds(scenario('{ sampling: 4 }', 9))).toEqual({
      model: 9,
      data: 9,
      partition: 9,
      sampling: 4,
      training: 9,
      noise: 9,
    });
  });

  it('a base that is not pre-trained is the seeded initial weights of the architecture (from-scratch FedAvg)', async () => {
    const s = scenario('{ model: 5 }', 1, false);
    const base = await taskBaseModel({ scenario: s, task: scenarioTask(s), stateDir: dir });
    const fresh = createMlp({ inputDim: 8, hidden: 8, numClasses: 10, seed: 5 });
    const weights = (model: tf.LayersModel) => model.getWeights().map((w) => Array.from(w.dataSync()));
    expect(weights(base.model)).toEqual(weights(fresh));
    const pretrained = await taskBaseModel({
      scenario: scenario('{ model: 5 }'),
      task: scenarioTask(s),
      stateDir: dir,
    });
    expect(weights(pretrained.model)).not.toEqual(weights(fresh));
    for (const model of [base.model, fresh, pretrained.model]) model.dispose();
  });
});
