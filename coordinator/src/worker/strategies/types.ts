import type { ServerOptimizerName, StrategyConfig } from '@flotilla/protocol';

/** One flattened delta (see `flattenTensors`) and its weight, normally its number of examples. */
export interface WeightedUpdate {
  values: Float32Array;
  /** Non-negative, finite; only ratios matter for the weighted strategies. */
  weight: number;
}

export interface AggregationResult {
  /**
   * Mean-type strategies: the aggregated delta. Server optimizers: the server step to add to the
   * current adapter (already multiplied by the server learning rate).
   */
  values: Float32Array;
  /** Indices (into the input array) of the updates that influenced the result, ascending. */
  selected: number[];
  /** Strategy-specific facts for the round log (scores, clipped counts, ...). */
  details: Record<string, number | string | number[]>;
}

/**
 * Server optimizer state carried between rounds. Every buffer has the model's flattened length;
 * `encodeServerOptimizerState` turns it into safetensors-ready tensors for persistence.
 */
export interface ServerOptimizerState {
  strategy: ServerOptimizerName;
  /** Server steps taken so far (0 before the first). */
  step: number;
  /** Named buffers: `momentum` (FedAvgM), `m` and `v` (FedAdam, FedYogi, FedAdagrad). */
  buffers: Record<string, Float32Array>;
}

/**
 * Choices where frameworks differ, beyond what `StrategyConfig` (the signed task policy) carries.
 * Each default is stated with the framework or paper it follows.
 */
export interface StrategyExtensions {
  /**
   * Multi-Krum averages the kept updates weighted by their example counts (`'weighted'`, Flower,
   * default) or uniformly (`'uniform'`, Blanchard et al. 2017).
   */
  multiKrumWeighting?: 'weighted' | 'uniform';
  /**
   * Norm bounding: `'clip'` (default) scales each update down to `normBound`; `'zero'` replaces an
   * update whose L2 norm exceeds `normBound` with zeros (TFF `zeroing_factory`).
   */
  normBoundingMode?: 'clip' | 'zero';
  /**
   * Zeroing: whether a zeroed update's weight stays in the denominator. Default true (TFF, where
   * the zeroed value is still averaged in); false renormalises over the surviving updates.
   */
  zeroedStayInDenominator?: boolean;
  /**
   * Initial second-moment value v₋₁ of FedAdam/FedYogi/FedAdagrad. Default τ² (Reddi et al. 2021,
   * Algorithm 2 requires v₋₁ ≥ τ²); Flower starts from 0.
   */
  initialAccumulator?: number;
  /**
   * Adam-style bias correction of the server step. Default false (Reddi et al. 2021 use none);
   * true multiplies η by sqrt(1-β2^t)/(1-β1^t) with t = step number starting at 1 (Kingma & Ba).
   */
  biasCorrection?: boolean;
}

export type AggregationConfig = StrategyConfig & StrategyExtensions;
