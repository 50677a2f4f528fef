import { describe, expect, it } from 'vitest';
import { TaskPolicySchema } from './messages/task.js';
import {
  aggregationWeight,
  defaultMaxExamplesPerUpdate,
  maxExamplesPerUpdate,
  updateWeight,
} from './update-weight.js';

const policy = TaskPolicySchema.parse({
  allowedModules: ['dense'],
  clipNorm: 1,
  maxBlobBytes: 4096,
  strategy: { name: 'fedavg' },
  audit: {},
});
const rounds = {
  maxSteps: 200,
  training: { epochs: 1, batchSize: 16, learningRate: 0.1, fedProxMu: 0, optimizer: 'sgd' as const },
};

describe('update weights', () => {
  it('defaults to FedAvg weights (examples) and a cap of maxSteps × batchSize examples', () => {
    expect(policy.weighting).toEqual({ rule: 'examples' });
    expect(defaultMaxExamplesPerUpdate(rounds)).toBe(3200);
    expect(maxExamplesPerUpdate({ policy, rounds })).toBe(3200);
    expect(maxExamplesPerUpdate({ policy: { ...policy, maxExamplesPerUpdate: 50 }, rounds })).toBe(50);
  });

  it('weighs by examples, equally, or capped', () => {
    expect(updateWeight({ rule: 'examples' }, 37)).toBe(37);
    expect(updateWeight({ rule: 'equal' }, 37)).toBe(1);
    expect(updateWeight({ rule: 'capped', cap: 20 }, 37)).toBe(20);
    expect(updateWeight({ rule: 'capped', cap: 20 }, 7)).toBe(7);
  });

  it('weighs every update 1 under differential privacy, whatever the rule', () => {
    const dp = { noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 8, populationSize: 100 };
    expect(aggregationWeight({ ...policy, dp }, 37)).toBe(1);
    expect(aggregationWeight({ weighting: { rule: 'capped', cap: 20 }, dp }, 37)).toBe(1);
    expect(aggregationWeight(policy, 37)).toBe(37);
  });

  it('refuses a capped rule without a positive integer cap', () => {
    const parse = (weighting: unknown) => TaskPolicySchema.safeParse({ ...policy, weighting }).success;
    expect(parse({ rule: 'capped' })).toBe(false);
    expect(parse({ rule: 'capped', cap: 0 })).toBe(false);
    expect(parse({ rule: 'capped', cap: 2.5 })).toBe(false);
    expect(parse({ rule: 'loudest' })).toBe(false);
    expect(parse({ rule: 'capped', cap: 5 })).toBe(true);
  });
});
