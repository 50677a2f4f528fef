import {
  STRATEGY_TRAITS,
  type AdapterMode,
  type StrategyConfig,
  type TaskDefinition,
} from '@flotilla/protocol';

// The rules read from protocol's STRATEGY_TRAITS table: the coordinator refuses a task whose
// combination cannot work when it registers it, and the worker runs DP and shard jobs by the same
// rows.

export type LoraRuleName = StrategyConfig['loraRule'];

/**
 * Whether a round of this strategy and LoRA rule can be summed in shard jobs. The LoRA `product`
 * rule averages B·A products rather than the tensors, so it does not decompose either.
 */
export function decomposes(strategy: Pick<StrategyConfig, 'name' | 'loraRule'>): boolean {
  return strategy.loraRule !== 'product' && STRATEGY_TRAITS[strategy.name].decomposes;
}

/**
 * Why a task's strategy, LoRA rule, adapter mode and DP policy cannot work together, or null.
 * - DP needs a mean-type strategy (the noise is calibrated to the sensitivity C/m of a mean) and a
 *   rule that averages the tensors (the `product` rule changes the sensitivity).
 * - The `ffa` rule keeps A frozen: a `lora` adapter trains A, so every round would be refused.
 * - Leaving flagged updates out of the aggregate is a decision on un-noised updates: not with DP.
 */
export function strategyCombinationProblem(task: {
  adapter: { mode: AdapterMode };
  policy: Pick<TaskDefinition['policy'], 'strategy' | 'dp'> & {
    audit?: Pick<TaskDefinition['policy']['audit'], 'excludeFlagged'>;
  };
}): string | null {
  const { strategy, dp } = task.policy;
  if (dp && task.policy.audit?.excludeFlagged === true)
    return 'policy.audit.excludeFlagged cannot be used with policy.dp: under differential privacy no decision may depend on one un-noised update';
  if (dp && !STRATEGY_TRAITS[strategy.name].dpCompatible)
    return `policy.dp needs a mean-type strategy (fedavg, a server optimizer or norm-bounding), not ${strategy.name}`;
  if (dp && strategy.loraRule === 'product')
    return 'policy.dp needs the fedit or ffa LoRA rule: the product rule changes the sensitivity';
  if (strategy.loraRule === 'ffa' && task.adapter.mode === 'lora')
    return 'the ffa LoRA rule keeps lora_A frozen, but a lora adapter trains it: use ffa-lora, or the fedit or product rule';
  return null;
}
