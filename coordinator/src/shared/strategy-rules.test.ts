import { describe, expect, it } from 'vitest';
import { StrategyConfigSchema } from '@flotilla/protocol';
import { strategyCombinationProblem } from './strategy-rules.js';

// Unit test of the combination rules alone; registration refusing them is task-registration.test.ts.

const task = (options: { dp: boolean; excludeFlagged?: boolean }) => ({
  adapter: { mode: 'ffa-lora' as const },
  policy: {
    strategy: StrategyConfigSchema.parse({ name: 'fedavg', loraRule: 'ffa' }),
    ...(options.dp
      ? { dp: { noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 10, populationSize: 100 } }
      : {}),
    audit: options.excludeFlagged === undefined ? {} : { excludeFlagged: options.excludeFlagged },
  },
});

describe('strategy combinations', () => {
  it('refuses leaving flagged updates out of a DP aggregate: a decision on un-noised updates', () => {
    expect(strategyCombinationProblem(task({ dp: true, excludeFlagged: true }))).toMatch(
      /excludeFlagged cannot be used with policy.dp/,
    );
  });

  it('allows it without DP, and DP without it', () => {
    expect(strategyCombinationProblem(task({ dp: false, excludeFlagged: true }))).toBeNull();
    expect(strategyCombinationProblem(task({ dp: true, excludeFlagged: false }))).toBeNull();
    expect(strategyCombinationProblem(task({ dp: true }))).toBeNull();
  });
});
