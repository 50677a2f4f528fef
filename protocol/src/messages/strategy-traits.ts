import { z } from 'zod';

// The aggregation strategies a task may name, with what each one allows. This table is the wire
// vocabulary (the task schema's `policy.strategy.name` is derived from its keys); the worker's
// strategy registry (coordinator/src/worker/strategies/registry.ts) must have one row per key, and
// the coordinator refuses at registration a task whose combination these traits rule out.
// docs/adding-a-strategy.md walks through adding one.

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
  /** A server optimizer: its result is a server step, and its state carries from round to round. */
  serverOptimizer: boolean;
}

const MEAN = { dpCompatible: true, decomposes: true, serverOptimizer: false } as const;
const OPTIMIZER = { dpCompatible: true, decomposes: true, serverOptimizer: true } as const;
const ROBUST = { dpCompatible: false, decomposes: false, serverOptimizer: false } as const;

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
} as const satisfies Record<string, StrategyTraits>;

export type StrategyName = keyof typeof STRATEGY_TRAITS;

/** The strategies whose `serverOptimizer` trait is true. */
export type ServerOptimizerName = {
  [K in StrategyName]: (typeof STRATEGY_TRAITS)[K]['serverOptimizer'] extends true ? K : never;
}[StrategyName];

// Object.keys loses the key type; the table above is the literal it is read from.
export const STRATEGY_NAMES = Object.keys(STRATEGY_TRAITS) as StrategyName[];

export function isServerOptimizer(name: StrategyName): name is ServerOptimizerName {
  return STRATEGY_TRAITS[name].serverOptimizer;
}

export const StrategyNameSchema = z.enum(STRATEGY_NAMES);
export const ServerOptimizerNameSchema = z.enum(STRATEGY_NAMES.filter(isServerOptimizer));
