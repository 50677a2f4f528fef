import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseScenario } from '../scenario/load.js';
import { centralizedRun, localSteps } from './centralized-run.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-centralized-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// 6 IID devices of 40 examples, 20% held out: 32 training examples each; B = 16, E = 1: 2 steps.
const scenario = (clipNorm: string) =>
  parseScenario(`
name: central
dataset: synthetic
data: { syntheticExamples: 400, syntheticDim: 8 }
model: { hidden: 8, baseEpochs: 1 }
devices: 6
devicesPerRound: 3
minReports: 1
rounds: 3
partition: { scheme: iid, maxExamplesPerDevice: 40 }
adapter: { mode: full, targetModules: [hidden, out] }
training: { epochs: 1, batchSize: 16, learningRate: 0.5, optimizer: sgd }
clipNorm: ${clipNorm}
`);

describe('centralized baseline with the federated budget', () => {
  it('counts each device’s local steps: E·⌈n/B⌉, at most maxSteps', () => {
    const training = scenario('1').training;
    expect(localSteps(32, training)).toBe(2);
    expect(localSteps(33, training)).toBe(3);
    expect(localSteps(10_000, training)).toBe(training.maxSteps);
  });

  it('takes exactly the fleet’s gradient steps on the pooled data, and the clip holds it back', async () => {
    const free = await centralizedRun(scenario('none'), { cacheDir: dir, clip: true });
    // 3 rounds × 3 participants × 2 steps, on 6 × 32 pooled examples; no bound to clip to.
    expect([free.steps, free.examples, free.clipNorm]).toEqual([18, 192, null]);
    expect(free.metrics.map((m) => m.participants)).toEqual([0, 3, 3, 3]);
    const first = free.metrics[0]?.loss ?? 0;
    expect(free.metrics.at(-1)?.loss).toBeLessThan(first * 0.8);
    // The same steps with each segment's change clipped to a tiny bound barely move the model.
    const held = await centralizedRun(scenario('0.0001'), { cacheDir: dir, clip: true });
    expect([held.steps, held.clipNorm]).toEqual([18, 0.0001]);
    expect(Math.abs((held.metrics.at(-1)?.loss ?? 0) - first)).toBeLessThan(1e-2);
    expect(held.label).toBe('centralized, same steps, clipped to 0.0001');
    expect(held.budget).toContain('18 gradient steps');
  }, 60_000);
});
