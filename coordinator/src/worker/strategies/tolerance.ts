// How many Byzantine updates each strategy is built to withstand in a round of n: its breakdown
// point as configured. The drift audit does not reject a robust strategy's candidate for flagging
// no more updates than that (audit-round.ts): the strategy already keeps them from steering it.
import type { AggregationConfig } from './types.js';

const TOLERANCE = {
  // Mean-type rules: one unbounded update moves the result arbitrarily far.
  fedavg: () => 0,
  fedavgm: () => 0,
  fedadam: () => 0,
  fedyogi: () => 0,
  fedadagrad: () => 0,
  'norm-bounding': () => 0,
  // A coordinate's median stays between honest values while attackers are fewer than half.
  median: (_config, n) => Math.floor((n - 1) / 2),
  // floor(β·n) values are cut from each end of every coordinate.
  'trimmed-mean': (config, n) => Math.floor(config.beta * n),
  // The configured f, as far as the rule's guarantee allows it in a round of n (Krum: n > 2f + 2;
  // Bulyan: n >= 4f + 3).
  krum: (config, n) => Math.min(config.byzantine, Math.floor((n - 3) / 2)),
  'multi-krum': (config, n) => Math.min(config.byzantine, Math.floor((n - 3) / 2)),
  bulyan: (config, n) => Math.min(config.byzantine, Math.floor((n - 3) / 4)),
} satisfies Record<AggregationConfig['name'], (config: AggregationConfig, n: number) => number>;

/** Byzantine updates `config`'s strategy withstands among `n` (0 for the mean-type rules). */
export function byzantineTolerance(config: AggregationConfig, n: number): number {
  return Math.max(0, TOLERANCE[config.name](config, n));
}
