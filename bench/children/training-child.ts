// Child process of the training section: tfjs picks its backend once per process, so each backend
// is measured in its own process. Prints one `BENCH_RESULT <json>` line on stdout.
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import type { AdapterSpec, TrainingPlan } from '@flotilla/protocol';
import { createAdaptedModel, initBackend, trainLocally, type LocalDataset } from '@flotilla/client';
import { loadMnist } from '../../simulations/src/data/mnist.js';
import { createMlp } from '../../simulations/src/model/mlp.js';
import { median } from '../lib/measure.js';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    backend: { type: 'string' },
    steps: { type: 'string', default: '50' },
    repeats: { type: 'string', default: '3' },
  },
  strict: true,
});
const requested = values.backend;
if (requested !== 'tensorflow' && requested !== 'wasm' && requested !== 'cpu') {
  process.stderr.write('usage: training-child --backend tensorflow|wasm|cpu [--steps N] [--repeats N]\n');
  process.exit(2);
}
const steps = Number(values.steps);
const repeats = Number(values.repeats);
const emit = (result: unknown): void => {
  process.stdout.write(`BENCH_RESULT ${JSON.stringify(result)}\n`);
};

let logLine = '';
const info = await initBackend({ prefer: requested, logger: (line) => (logLine = line) });
if (info.name !== requested) {
  emit({ backend: requested, available: false, fellBackTo: info.name, log: logLine });
  process.exit(0);
}

// 784-128-10 MLP ('hidden', 'out'), a 2,000-digit local dataset and a 200-digit holdout.
const mnist = loadMnist();
const pick = (from: number, count: number, stride: number): LocalDataset => {
  const xs = new Float32Array(count * mnist.dim);
  const ys = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const row = (from + i * stride) % mnist.n;
    xs.set(mnist.xs.subarray(row * mnist.dim, (row + 1) * mnist.dim), i * mnist.dim);
    ys[i] = mnist.ys[row] ?? 0;
  }
  return { xs, ys, featureShape: [mnist.dim] };
};
const data = pick(0, 2000, 5);
const holdout = pick(1, 200, 50);
const base = createMlp({ seed: 1 });
const plan: TrainingPlan = { epochs: 100, batchSize: 32, learningRate: 0.01, fedProxMu: 0, optimizer: 'sgd' };

type Gradients = 'custom' | 'autodiff';
const configs = (['lora', 'ffa-lora'] as const).flatMap((mode) =>
  (['custom', 'autodiff'] as const).map((gradients: Gradients) => ({ mode, gradients })),
);
const spec = (mode: AdapterSpec['mode']): AdapterSpec => ({
  mode,
  targetModules: ['hidden', 'out'],
  r: 16,
  alpha: 32,
  seed: 7,
});
const models = configs.map((c) => createAdaptedModel({ base, spec: spec(c.mode), gradients: c.gradients }));
const train = (index: number, maxSteps: number): number => {
  const model = models[index];
  if (model === undefined) return Number.NaN;
  const result = trainLocally({
    model,
    data,
    holdout,
    plan,
    budget: { maxSteps, maxSeconds: 120 },
    seed: index,
  });
  return result.stepsPerSecond;
};

// Warm-up (kernel compilation, first allocations), then interleaved timed rounds.
configs.forEach((_, i) => train(i, 5));
const samples = configs.map(() => [] as number[]);
const tensorsBefore = tf.memory().numTensors;
for (let r = 0; r < repeats; r++) configs.forEach((_, i) => samples[i]?.push(train(i, steps)));
emit({
  backend: requested,
  available: true,
  log: logLine,
  steps,
  repeats,
  batchSize: plan.batchSize,
  leakedTensors: tf.memory().numTensors - tensorsBefore,
  results: configs.map((c, i) => ({ ...c, stepsPerSecond: median(samples[i] ?? []), samples: samples[i] })),
});
models.forEach((m) => m.dispose());
