import type { AdapterMode, StrategyConfig, TaskDefinition } from '@flotilla/protocol';

// What each aggregation strategy allows, in one table: the coordinator refuses a task whose
// combination cannot work when it registers it, the worker runs DP and shard jobs by the same
// rows, and the tests enumerate combinations from them.

export type StrategyName = StrategyConfig['name'];
export type LoraRuleName = StrategyConfig['loraRule'];

export interface StrategyTraits {
  /**
   * Its output is a (weighted) mean of the updates, or a server step on that mean, so Gaussian
   * noise z·C/m on the mean gives the stated DP guarantee (DP-FedAvg, McMahan et al. 2018).
   */
  dpCompatible: boolean;
  /**
   * Its aggregate is a function of Σ w_k x_k and Σ w_k alone, so shard jobs can sum the updates
   * (hierarchical rounds). Order statistics and pairwise distances need every update at once.
   * Norm bounding would decompose, but the shard jobs do not implement its clip.
   */
  decomposes: boolean;
  /** A server optimizer: its step carries state from round to round. */
  serverOptimizer: boolean;
}

const MEAN = { dpCompatible: true, decomposes: true, serverOptimizer: false };
const OPTIMIZER = { dpCompatible: true, decomposes: true, serverOptimizer: true };
const ROBUST = { dpCompatible: false, decomposes: false, serverOptimizer: false };

export const STRATEGY_TRAITS = {
  fedavg: MEAN,
  fedavgm: OPTIMIZER,
  fedadam: OPTIMIZER,
  fedyogi: OPTIMIZER,
  fedadagrad: OPTIMIZER,
  median: ROBUST,
  'trimmed-mean': ROBUST,
  krum: ROBUST,
  'multi-krum': ROBUST,
  bulyan: ROBUST,
  'norm-bounding': { dpCompatible: true, decomposes: false, serverOptimizer: false },
} as const satisfies Record<StrategyName, StrategyTraits>;

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
 */
export function strategyCombinationProblem(task: {
  adapter: { mode: AdapterMode };
  policy: Pick<TaskDefinition['policy'], 'strategy' | 'dp'>;
}): string | null {
  const { strategy, dp } = task.policy;
  if (dp && !STRATEGY_TRAITS[strategy.name].dpCompatible)
    return `policy.dp needs a mean-type strategy (fedavg, a server optimizer or norm-bounding), not ${strategy.name}`;
  if (dp && strategy.loraRule === 'product')
    return 'policy.dp needs the fedit or ffa LoRA rule: the product rule changes the sensitivity';
  if (strategy.loraRule === 'ffa' && task.adapter.mode === 'lora')
    return 'the ffa LoRA rule keeps lora_A frozen, but a lora adapter trains it: use ffa-lora, or the fedit or product rule';
  return null;
}
