import {
  FlotillaError,
  STRATEGY_TRAITS,
  aggregationWeight,
  at,
  isServerOptimizer,
  type DpRelease,
  type StrategyName,
  type TaskDefinition,
} from '@flotilla/protocol';
import { decomposes } from '../../shared/strategy-rules.js';
import {
  aggregateLora,
  effectiveLoraRule,
  type LoraAggregationResult,
  type TensorMap,
} from '../lora/lora-rules.js';
import {
  STRATEGY_REGISTRY,
  aggregate,
  type AggregationConfig,
  type ServerOptimizerState,
} from '../strategies/index.js';
import {
  RdpAccountant,
  addGaussianNoise,
  adaptiveNoiseSplit,
  noiseStdOnAverage,
  noisedUnclippedFraction,
  updateClipNorm,
  type RandomSource,
  type RdpAccountantState,
} from '../privacy/index.js';

export interface ComputeRoundInput {
  task: TaskDefinition;
  /** Adapter the round started from. */
  current: TensorMap;
  /**
   * Decoded deltas with the examples they claim (weighed by `aggregationWeight` under the task's
   * policy), device norms and clipped flags (no deltas with `mean`).
   */
  updates: Array<{ delta?: TensorMap; numExamples: number; norm: number; clipped: boolean }>;
  /**
   * The updates' weighted mean delta (uniform weights under DP), summed by shard jobs: the
   * strategy then runs on it alone. Only for strategies that decompose into sums.
   */
  mean?: TensorMap;
  /** Clip norm the round enforced. */
  clipNorm: number;
  optimizerState: ServerOptimizerState | undefined;
  accountant: RdpAccountantState | undefined;
  rng: RandomSource;
}

export interface ComputeRoundResult {
  adapter: TensorMap;
  lora: Omit<LoraAggregationResult, 'adapter'>;
  strategy: string;
  /** Indices of updates that influenced the result. */
  selected: number[];
  details: Record<string, number | string | number[]>;
  optimizerState: ServerOptimizerState | undefined;
  privacy: {
    /** The task's noise multiplier z (count and update queries together, with adaptive clipping). */
    noiseMultiplier: number;
    /** Std of the noise on the average of the updates: z_Δ·C/m. */
    noiseStd: number;
    clipNorm: number;
    nextClipNorm: number;
    /** ε after charging this round, at `delta`. */
    epsilon: number;
    delta: number;
    /** The noised queries of the round, as the round log records them (docs/privacy.md). */
    releases: DpRelease[];
    /** Accountant after charging this round: stored before anything about the round is published. */
    accountant: RdpAccountantState;
  } | null;
}

/**
 * The math of one round: the configured strategy under the task's LoRA rule, Gaussian noise on
 * the average when DP is on (z·C/m with m the number of updates; DP uses uniform weights, as in
 * DP-FedAvg, McMahan et al. 2018, so the sensitivity of the average is C/m), the RDP accountant
 * step, and the adaptive clip norm for the next round. The step is the Gaussian mechanism without
 * amplification by sampling (q = 1): devices are selected as a fixed-size set among those that
 * checked in, and the round log names them (docs/privacy.md).
 */
export function computeRound(input: ComputeRoundInput): ComputeRoundResult {
  const { task } = input;
  const config: AggregationConfig = task.policy.strategy;
  const dp = task.policy.dp;
  const m = input.updates.length;
  // The quorum (minReports >= 1) was checked before the round was computed.
  if (m === 0) throw new FlotillaError('INTERNAL', 'no usable updates to aggregate');
  if (dp && dp.noiseMultiplier > 0) {
    // Registration refuses these tasks (strategyCombinationProblem); a task stored before that
    // rule, or written around it, is refused here still.
    if (!STRATEGY_TRAITS[config.name].dpCompatible) {
      throw new FlotillaError(
        'BAD_REQUEST',
        `differential privacy is defined here for mean-type strategies, not ${config.name}`,
      );
    }
    if (config.loraRule === 'product') {
      throw new FlotillaError(
        'BAD_REQUEST',
        'differential privacy needs the fedit or ffa LoRA rule: the product rule changes the sensitivity',
      );
    }
  }

  let noiseMultiplier = dp?.noiseMultiplier ?? 0;
  let countStddev = 0;
  if (dp?.adaptiveClip && noiseMultiplier > 0) {
    [countStddev, noiseMultiplier] = adaptiveNoiseSplit({
      noiseMultiplier,
      numSampledClients: m,
      ...(dp.adaptiveClip.clippedCountStddev !== undefined
        ? { clippedCountStddev: dp.adaptiveClip.clippedCountStddev }
        : {}),
    });
  }
  const noiseStd = dp ? noiseStdOnAverage({ noiseMultiplier, clipNorm: input.clipNorm, numUpdates: m }) : 0;
  const weights = input.updates.map((u) => aggregationWeight(task.policy, u.numExamples));
  const { deltas, combineWeights } = strategyInputs(input, weights);

  let optimizerState = input.optimizerState;
  let selected: number[] = [];
  let details: Record<string, number | string | number[]> = {};
  const combine = (vectors: Float32Array[]): Float32Array => {
    const weighted = vectors.map((values, i) => ({ values, weight: at(combineWeights, i) }));
    if (!dp || noiseStd === 0) {
      const { result, state } = aggregate(config, weighted, optimizerState);
      optimizerState = state ?? optimizerState;
      selected = result.selected;
      details = result.details;
      return result.values;
    }
    // Noise goes on the mean; a server optimizer then treats the noised mean as its pseudo-gradient.
    const mean = aggregate({ ...config, name: dpMeanOf(config.name) }, weighted);
    const noised = addGaussianNoise(mean.result.values, noiseStd, input.rng);
    selected = mean.result.selected;
    details = { ...mean.result.details, noiseStd };
    if (!isServerOptimizer(config.name)) return noised;
    const { result, state } = aggregate(config, [{ values: noised, weight: 1 }], optimizerState);
    optimizerState = state ?? optimizerState;
    return result.values;
  };

  const lora = aggregateLora({
    rule: effectiveLoraRule(task.adapter.mode, config.loraRule),
    current: input.current,
    deltas,
    weights: combineWeights,
    combine,
  });
  if (input.mean) {
    // Every update went into the mean; fedit's exactness diagnostic needs each device's B·A.
    selected = input.updates.map((_, index) => index);
    lora.feditRelativeError = null;
  }

  let privacy: ComputeRoundResult['privacy'] = null;
  if (dp) {
    const accountant = input.accountant ? RdpAccountant.fromJSON(input.accountant) : new RdpAccountant();
    accountant.step(dpReleaseStep(dp));
    const { epsilon } = accountant.getEpsilon(dp.delta);
    let nextClipNorm = input.clipNorm;
    if (dp.adaptiveClip) {
      const fraction = noisedUnclippedFraction({
        // The coordinator sees post-clip norms; a device-reported clip means the pre-clip norm exceeded C.
        norms: input.updates.map((u) => (u.clipped ? input.clipNorm * 2 : u.norm)),
        clipNorm: input.clipNorm,
        clippedCountStddev: countStddev,
        rng: input.rng,
      });
      nextClipNorm = updateClipNorm({
        clipNorm: input.clipNorm,
        unclippedFraction: fraction,
        targetUnclippedQuantile: dp.adaptiveClip.targetUnclippedQuantile,
        learningRate: dp.adaptiveClip.learningRate,
      });
    }
    // The update query is the sum of m clipped updates (sensitivity C); the noise on the average,
    // z_Δ·C/m, is z_Δ·C on that sum. The centred unclipped count has sensitivity 1/2.
    const releases: DpRelease[] = [
      { query: 'update-sum', sensitivity: input.clipNorm, noiseStd: noiseMultiplier * input.clipNorm },
      ...(dp.adaptiveClip
        ? [{ query: 'unclipped-count' as const, sensitivity: 0.5, noiseStd: countStddev }]
        : []),
    ];
    privacy = {
      noiseMultiplier: dp.noiseMultiplier,
      noiseStd,
      clipNorm: input.clipNorm,
      nextClipNorm,
      epsilon,
      delta: dp.delta,
      releases,
      accountant: accountant.toJSON(),
    };
    // FedIT's exactness diagnostic is computed from each device's own factors: not published under DP.
    lora.feditRelativeError = null;
  }
  const { adapter, ...loraInfo } = lora;
  return { adapter, lora: loraInfo, strategy: config.name, selected, details, optimizerState, privacy };
}

/**
 * What one DP round costs, for the accountant: the Gaussian mechanism with the task's noise
 * multiplier z, unamplified (q = 1). With adaptive clipping z already covers both noised queries:
 * the split gives z_Δ⁻² + (2σ_b)⁻² = z⁻² (Andrew et al. 2021).
 */
export function dpReleaseStep(dp: { noiseMultiplier: number }): { q: number; noiseMultiplier: number } {
  return { q: 1, noiseMultiplier: dp.noiseMultiplier };
}

/** The strategy registry's DP mean for `name` (the checks above refused the strategies without one). */
function dpMeanOf(name: StrategyName): StrategyName {
  const mean = STRATEGY_REGISTRY[name].dpMean;
  if (mean === null) throw new FlotillaError('INTERNAL', `${name} has no DP mean in the strategy registry`);
  return mean;
}

/** The deltas the strategy sees and their weights: every update's, or the one presummed mean. */
function strategyInputs(
  input: Omit<ComputeRoundInput, 'rng'>,
  weights: number[],
): { deltas: TensorMap[]; combineWeights: number[] } {
  if (input.mean) {
    if (!decomposes(input.task.policy.strategy))
      throw new FlotillaError(
        'INTERNAL',
        `${input.task.policy.strategy.name} cannot run on a presummed mean`,
      );
    return { deltas: [input.mean], combineWeights: [1] };
  }
  const deltas = input.updates.map((u, i) => {
    if (!u.delta) throw new FlotillaError('INTERNAL', `update ${i} has no delta and no mean was given`);
    return u.delta;
  });
  return { deltas, combineWeights: weights };
}
