// Robust strategies against a FedAvg pass over the same updates, interleaved in one run (issue 20:
// median and trimmed mean ≤ 10x, Krum and Bulyan ≤ 20x, 100 updates of 1,000,000 parameters).
// Measured twice: with the updates where the aggregation job puts them (flattened into the
// kernel's arena, read in place: the headline keys), and on the JS heap (every kernel copies them
// in first, as the bench measured before the kernels, when the 78x and 150x were taken).
import { StrategyConfigSchema, type StrategyConfig } from '@flotilla/protocol';
import { aggregate, type WeightedUpdate } from '@flotilla/coordinator/worker';
import { interleaved } from '../lib/measure.js';
import type { BenchRow } from '../lib/report.js';

/** Issue 20's limits, as multiples of a FedAvg pass over the same updates. */
export const ROBUST_LIMITS = { median: 10, 'trimmed-mean': 10, krum: 20, 'multi-krum': 20, bulyan: 20 };
type Robust = keyof typeof ROBUST_LIMITS;

/** Top-level keys of `bench/results.json` (arena-placed updates), null when the section did not run. */
export const ROBUST_KEYS = [
  'medianVsFedavgRatio',
  'trimmedMeanVsFedavgRatio',
  'krumVsFedavgRatio',
  'bulyanVsFedavgRatio',
] as const;
type RobustKey = (typeof ROBUST_KEYS)[number];

const KEY_OF: Partial<Record<Robust, RobustKey>> = {
  median: 'medianVsFedavgRatio',
  'trimmed-mean': 'trimmedMeanVsFedavgRatio',
  krum: 'krumVsFedavgRatio',
  bulyan: 'bulyanVsFedavgRatio',
};

/** f = 10 of 100 updates (Bulyan needs n ≥ 4f + 3); β = 0.1 cuts 10 per end. */
const CONFIGS: Record<Robust | 'fedavg', StrategyConfig> = {
  fedavg: StrategyConfigSchema.parse({ name: 'fedavg' }),
  median: StrategyConfigSchema.parse({ name: 'median' }),
  'trimmed-mean': StrategyConfigSchema.parse({ name: 'trimmed-mean', beta: 0.1 }),
  krum: StrategyConfigSchema.parse({ name: 'krum', byzantine: 10 }),
  'multi-krum': StrategyConfigSchema.parse({ name: 'multi-krum', byzantine: 10 }),
  bulyan: StrategyConfigSchema.parse({ name: 'bulyan', byzantine: 10 }),
};
const ROBUST = Object.keys(ROBUST_LIMITS) as Robust[];

export interface RobustRun {
  medianMs: Record<Robust | 'fedavg', number>;
  samplesMs: Record<Robust | 'fedavg', number[]>;
  rounds: number;
  ratios: Record<Robust, number>;
}

/** Every robust strategy and FedAvg over `updates`, interleaved round by round. */
export function measureRobust(updates: readonly WeightedUpdate[], quick: boolean): RobustRun {
  let sink = 0;
  const run = (name: Robust | 'fedavg') => (): void => {
    sink += aggregate(CONFIGS[name], updates).result.values[0] ?? 0;
  };
  const contenders = Object.fromEntries(
    (['fedavg', ...ROBUST] as const).map((name) => [name, run(name)]),
  ) as Record<Robust | 'fedavg', () => void>;
  // One warm-up round: compiles each update count's networks and lets the engine tier them up.
  const timed = interleaved(contenders, {
    warmup: 1,
    repeats: quick ? 2 : 5,
    budgetMs: quick ? 20_000 : 90_000,
  });
  if (!Number.isFinite(sink)) throw new Error('robust aggregation gave a non-finite value');
  const ratios = Object.fromEntries(
    ROBUST.map((name) => [name, timed.medianMs[name] / timed.medianMs.fedavg]),
  ) as Record<Robust, number>;
  return { ...timed, ratios };
}

/** Table rows for one placement of the updates. */
export function robustRows(run: RobustRun, placement: string, size: string): BenchRow[] {
  return ROBUST.map((name) => {
    const limit = ROBUST_LIMITS[name];
    const ratio = run.ratios[name];
    const options = name === 'trimmed-mean' ? ' (beta=0.1)' : name === 'median' ? '' : ' (f=10)';
    return {
      section: 'aggregation',
      measure: `${name}${options}, ${size}, ${placement}`,
      ours: run.medianMs[name],
      oursUnit: 'ms',
      reference: run.medianMs.fedavg,
      referenceUnit: 'ms',
      referenceName: 'FedAvg, same updates',
      ratio,
      ratioMeaning: `${name} / fedavg time (goal <= ${limit}: ${ratio <= limit ? 'met' : 'NOT met'})`,
    };
  });
}

/** The headline keys from the arena-placed run. */
export function robustKeys(run: RobustRun): Record<RobustKey, number> {
  const keys = {} as Record<RobustKey, number>;
  for (const name of ROBUST) {
    const key = KEY_OF[name];
    if (key !== undefined) keys[key] = run.ratios[name];
  }
  return keys;
}
