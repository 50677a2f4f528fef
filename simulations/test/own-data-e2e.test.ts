import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { createRng } from '../src/rng/random.js';
import { loadScenarioFile } from '../src/scenario/load.js';
import { saveModelFiles } from '../src/model/model-files.js';
import { runSimulation, type SimulationResult } from '../src/runner/run-simulation.js';
import { testRedisUrl } from '../../test-support/redis.js';
import { readRunLog } from './support/index.js';

// Scenarios on your own model and data, end to end on the real parts: the built-in text task on
// the character-level GRU, LEAF FEMNIST files on the CNN, and a CSV table on a model.json base.

const root = mkdtempSync(join(tmpdir(), 'flotilla-own-data-'));
const cacheDir = join(root, 'cache');
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function run(name: string, yaml: string): Promise<SimulationResult> {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'scenario.yaml'), yaml);
  // Loaded from the file: its relative data and model paths are taken from the file's folder.
  const scenario = loadScenarioFile(join(dir, 'scenario.yaml'));
  return runSimulation({
    scenario,
    stateDir: join(dir, 'state'),
    cacheDir,
    redisUrl: testRedisUrl(),
    threads: 2,
    progress: false,
  });
}

async function expectVerifiedLog(result: SimulationResult): Promise<void> {
  expect((await readRunLog(result)).problems).toEqual([]);
}

describe('your own model and data, end to end', () => {
  it('the built-in text task: a char-level GRU learns plain text, adapters learn the writers’ styles', async () => {
    const result = await run(
      'text',
      `
name: text
seed: 3
dataset: text
data: { textStyles: 3, textSequenceLength: 20, textExamplesPerDevice: 80, textPretrainExamples: 2500 }
devices: 6
devicesPerRound: 4
minReports: 3
rounds: 3
model: { architecture: char-rnn, cell: gru, hidden: 48, baseEpochs: 5 }
adapter: { mode: ffa-lora, r: 8, alpha: 16, targetModules: [hidden, out] }
training: { maxSteps: 15, batchSize: 16, learningRate: 0.05, validationTolerance: 100 }
strategy: { name: fedavg, loraRule: ffa }
clipNorm: 5
partition: { maxExamplesPerDevice: 80 }
`,
    );
    expect(result.backend).toBe('wasm');
    // 80 classes: chance is 1.25%. The base learned the plain style and does worse on the styles.
    expect(result.base.referenceLabel).toBe('plain text');
    expect(result.base.cleanAccuracy).toBeGreaterThan(0.5);
    expect(result.base.shiftedAccuracy).toBeLessThan(result.base.cleanAccuracy ?? 0);
    const rounds = result.metrics.slice(1);
    expect(rounds.filter((m) => m.decision === 'COMMITTED').length).toBeGreaterThanOrEqual(2);
    const start = result.metrics[0];
    const end = rounds.at(-1);
    expect(end?.loss).toBeLessThan(start?.loss ?? 0);
    expect(end?.accuracy).toBeGreaterThan(start?.accuracy ?? 1);
    await expectVerifiedLog(result);
  }, 600_000);

  it('LEAF FEMNIST files on disk: one device per writer, a CNN base, evaluation from test/', async () => {
    // Writers draw bars: class c is a bar at row 4 + 2c, one row lower for odd writers.
    const leaf = join(root, 'femnist', 'data');
    const rng = createRng(21);
    const image = (label: number, writer: number) =>
      Array.from({ length: 784 }, (_, p) => {
        const row = Math.floor(p / 28);
        const col = p % 28;
        const bar = row === 4 + 2 * label + (writer % 2) && col >= 4 && col < 24;
        return bar ? 1 : 0.1 * rng.next();
      });
    const writeSplit = (split: string, perWriter: number) => {
      mkdirSync(join(leaf, split), { recursive: true });
      const users = Array.from({ length: 12 }, (_, w) => `f${String(w).padStart(4, '0')}_07`);
      const data = Object.fromEntries(
        users.map((user, w) => {
          const ys = Array.from({ length: perWriter }, (_, k) => (k + w) % 10);
          return [user, { x: ys.map((y) => image(y, w)), y: ys }];
        }),
      );
      writeFileSync(
        join(leaf, split, 'all_data_0_niid_0_keep_0_train_9.json'),
        JSON.stringify({ users, num_samples: users.map(() => perWriter), user_data: data }),
      );
    };
    writeSplit('train', 60);
    writeSplit('test', 10);
    const result = await run(
      'femnist',
      `
name: femnist
seed: 4
dataset: leaf
source: { path: ../femnist/data/train, leafTask: femnist, pretrainFraction: 0.25 }
devices: 6
devicesPerRound: 3
minReports: 2
rounds: 2
model: { hidden: 32, baseEpochs: 8 }
adapter: { mode: ffa-lora, r: 4, alpha: 8, targetModules: [hidden, out] }
training: { maxSteps: 5, batchSize: 8, validationTolerance: 100 }
strategy: { name: fedavg, loraRule: ffa }
`,
    );
    expect(result.devices).toHaveLength(6);
    expect(result.base.testLabel).toBe('test');
    // 62 FEMNIST classes, 10 in use: chance is 10%; the pre-training writers taught the bars.
    expect(result.base.shiftedAccuracy).toBeGreaterThan(0.3);
    expect(result.metrics.slice(1).every((m) => m.decision !== 'ABANDONED')).toBe(true);
    await expectVerifiedLog(result);
  }, 600_000);

  it('a CSV table with a user column on a tfjs model.json base', async () => {
    const dir = join(root, 'tabular');
    mkdirSync(dir, { recursive: true });
    const rng = createRng(8);
    const lines = ['user,f1,f2,f3,f4,label'];
    for (let u = 0; u < 5; u++)
      for (let k = 0; k < 30; k++) {
        const label = k % 3;
        const f = [0, 1, 2, 3].map((j) => (j === label ? 2 : 0) + 0.4 * (rng.next() - 0.5) + 0.2 * u);
        lines.push([`u${u}`, ...f.map((v) => v.toFixed(4)), ['low', 'mid', 'high'][label]].join(','));
      }
    writeFileSync(join(dir, 'table.csv'), `${lines.join('\n')}\n`);
    const base = tf.sequential({ name: 'user_mlp' });
    base.add(
      tf.layers.dense({
        name: 'hidden',
        inputShape: [4],
        units: 8,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
    );
    base.add(
      tf.layers.dense({
        name: 'out',
        units: 3,
        activation: 'softmax',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      }),
    );
    await saveModelFiles(base, join(dir, 'model'));
    base.dispose();
    const result = await run(
      'tabular',
      `
name: tabular
seed: 5
dataset: csv
source: { path: ../tabular/table.csv, label: label, user: user, testFraction: 0.2, holdoutFraction: 0.2 }
devices: 3
devicesPerRound: 3
minReports: 2
rounds: 2
model: { path: ../tabular/model/model.json }
adapter: { mode: lora, r: 2, alpha: 4, targetModules: [hidden, out] }
training: { maxSteps: 10, batchSize: 10, learningRate: 0.05, validationTolerance: 100 }
strategy: { name: fedavg, loraRule: fedit }
`,
    );
    // Five writers: one for the test, one for the holdout, three devices; none pre-trains.
    expect(result.devices).toHaveLength(3);
    expect(result.base.cleanAccuracy).toBeNull();
    expect(result.metrics.slice(1).filter((m) => m.decision === 'COMMITTED').length).toBeGreaterThanOrEqual(
      1,
    );
    await expectVerifiedLog(result);
  }, 600_000);
});
