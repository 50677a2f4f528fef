// The strategy registry: how the worker runs each strategy that protocol's STRATEGY_TRAITS names,
// one row per name (a missing or unknown name does not compile). What a strategy allows (DP, shard
// jobs, server state) is its row there; how it aggregates and what it withstands is its row here.
// The contract suite (strategies.contract.test.ts) fails on a row without a case.
// docs/adding-a-strategy.md walks through adding one.
import { FlotillaError, type StrategyName } from '@flotilla/protocol';
import { aggregateAdaptive } from './adaptive-optimizers.js';
import { aggregateBulyan } from './bulyan.js';
import { aggregateFedAvg } from './fedavg.js';
import { aggregateFedAvgM } from './fedavgm.js';
import { aggregateKrum } from './krum.js';
import { aggregateMedian } from './median.js';
import { aggregateNormBounded } from './norm-bounding.js';
import { aggregateTrimmedMean } from './trimmed-mean.js';
import type { AggregationConfig, AggregationResult, ServerOptimizerState, WeightedUpdate } from './types.js';

export interface StrategyImplementation {
  /**
   * Aggregates one round. `state` is the server optimizer state of the previous round; a server
   * optimizer (STRATEGY_TRAITS) returns the state to persist, every other strategy none.
   */
  aggregate(
    config: AggregationConfig,
    updates: readonly WeightedUpdate[],
    state: ServerOptimizerState | undefined,
  ): { result: AggregationResult; state?: ServerOptimizerState };
  /**
   * Byzantine updates it withstands in a round of `n`: its breakdown point as configured. The drift
   * audit does not reject a robust strategy's candidate for flagging no more updates than that
   * (audit-round.ts): the strategy already keeps them from steering it.
   */
  tolerance(config: AggregationConfig, n: number): number;
  /**
   * Under DP, the strategy whose mean the Gaussian noise goes on (its noise is calibrated to the
   * sensitivity C/m of a mean): the row's own for a mean-type rule, FedAvg's for a server
   * optimizer, which then steps on the noised mean. null where protocol's STRATEGY_TRAITS say the
   * strategy is not `dpCompatible`.
   */
  dpMean: StrategyName | null;
}

/** Mean-type rules: one unbounded update moves the result arbitrarily far. */
const NONE = (): number => 0;
/** The configured f, as far as Krum's guarantee n > 2f + 2 allows it in a round of n. */
const KRUM_TOLERANCE = (config: AggregationConfig, n: number): number =>
  Math.min(config.byzantine, Math.floor((n - 3) / 2));

export const STRATEGY_REGISTRY: Readonly<Record<StrategyName, StrategyImplementation>> = {
  fedavg: {
    aggregate: (_config, updates) => ({ result: aggregateFedAvg(updates) }),
    tolerance: NONE,
    dpMean: 'fedavg',
  },
  fedavgm: {
    aggregate: (config, updates, state) => aggregateFedAvgM(updates, config, state),
    tolerance: NONE,
    dpMean: 'fedavg',
  },
  fedadam: {
    aggregate: (config, updates, state) => aggregateAdaptive('fedadam', updates, config, state),
    tolerance: NONE,
    dpMean: 'fedavg',
  },
  fedyogi: {
    aggregate: (config, updates, state) => aggregateAdaptive('fedyogi', updates, config, state),
    tolerance: NONE,
    dpMean: 'fedavg',
  },
  fedadagrad: {
    aggregate: (config, updates, state) => aggregateAdaptive('fedadagrad', updates, config, state),
    tolerance: NONE,
    dpMean: 'fedavg',
  },
  median: {
    aggregate: (_config, updates) => ({ result: aggregateMedian(updates) }),
    // A coordinate's median stays between honest values while attackers are fewer than half.
    tolerance: (_config, n) => Math.floor((n - 1) / 2),
    dpMean: null,
  },
  'trimmed-mean': {
    aggregate: (config, updates) => ({ result: aggregateTrimmedMean(updates, { beta: config.beta }) }),
    // floor(β·n) values are cut from each end of every coordinate.
    tolerance: (config, n) => Math.floor(config.beta * n),
    dpMean: null,
  },
  krum: {
    aggregate: (config, updates) => ({
      result: aggregateKrum(updates, { byzantine: config.byzantine, keep: 1 }),
    }),
    tolerance: KRUM_TOLERANCE,
    dpMean: null,
  },
  'multi-krum': {
    aggregate: (config, updates) => ({
      result: aggregateKrum(updates, {
        byzantine: config.byzantine,
        keep: config.keep,
        weighting: config.multiKrumWeighting,
      }),
    }),
    tolerance: KRUM_TOLERANCE,
    dpMean: null,
  },
  bulyan: {
    aggregate: (config, updates) => ({ result: aggregateBulyan(updates, { byzantine: config.byzantine }) }),
    // Bulyan's guarantee needs n >= 4f + 3.
    tolerance: (config, n) => Math.min(config.byzantine, Math.floor((n - 3) / 4)),
    dpMean: null,
  },
  'norm-bounding': {
    aggregate: (config, updates) => {
      if (config.normBound === undefined) {
        throw new FlotillaError('BAD_REQUEST', 'norm-bounding needs strategy.normBound');
      }
      return {
        result: aggregateNormBounded(updates, {
          normBound: config.normBound,
          mode: config.normBoundingMode,
          zeroedStayInDenominator: config.zeroedStayInDenominator,
        }),
      };
    },
    tolerance: NONE,
    dpMean: 'norm-bounding',
  },
};

/** Byzantine updates `config`'s strategy withstands among `n` (0 for the mean-type rules). */
export function byzantineTolerance(config: AggregationConfig, n: number): number {
  return Math.max(0, STRATEGY_REGISTRY[config.name].tolerance(config, n));
}
