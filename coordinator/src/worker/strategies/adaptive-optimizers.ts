// FedAdam, FedYogi, FedAdagrad (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2)
// on the weighted-mean delta Δ_t as pseudo-gradient:
//   m_t = β1 m_{t-1} + (1 - β1) Δ_t
//   v_t = v_{t-1} + Δ_t²                                   (FedAdagrad)
//   v_t = v_{t-1} - (1 - β2) Δ_t² sign(v_{t-1} - Δ_t²)     (FedYogi)
//   v_t = β2 v_{t-1} + (1 - β2) Δ_t²                        (FedAdam)
//   step = η m_t / (sqrt(v_t) + τ)
// m_{-1} = 0, v_{-1} = τ² (paper) unless `initialAccumulator` says otherwise (Flower uses 0).
import { checkFinite } from './checks.js';
import { aggregateFedAvg } from './fedavg.js';
import { resumeState, stateBuffer } from './server-state.js';
import type { AggregationResult, ServerOptimizerState, WeightedUpdate } from './types.js';
import { f32At } from '@flotilla/protocol';

export type AdaptiveOptimizer = 'fedadam' | 'fedyogi' | 'fedadagrad';

export interface AdaptiveOptimizerOptions {
  /** Server learning rate η. */
  serverLearningRate: number;
  /** First-moment decay β1 in [0, 1). */
  beta1: number;
  /** Second-moment decay β2 in [0, 1) (unused by FedAdagrad). */
  beta2: number;
  /** Adaptivity τ > 0: added to sqrt(v) in the denominator. */
  tau: number;
  /** v₋₁; default τ². */
  initialAccumulator?: number;
  /** Adam bias correction of η; default false (the paper has none). */
  biasCorrection?: boolean;
}

export function aggregateAdaptive(
  optimizer: AdaptiveOptimizer,
  updates: readonly WeightedUpdate[],
  options: AdaptiveOptimizerOptions,
  previous?: ServerOptimizerState,
): { result: AggregationResult; state: ServerOptimizerState } {
  const averaged = aggregateFedAvg(updates);
  const delta = averaged.values;
  const { beta1, beta2, tau } = options;
  const v0 = options.initialAccumulator ?? tau * tau;
  const prior = resumeState(optimizer, delta.length, { m: 0, v: v0 }, previous);
  const t = prior.step + 1;
  const eta = options.biasCorrection
    ? (options.serverLearningRate * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t)
    : options.serverLearningRate;
  const oldM = stateBuffer(prior, 'm');
  const oldV = stateBuffer(prior, 'v');
  const m = new Float32Array(delta.length);
  const v = new Float32Array(delta.length);
  const step = new Float32Array(delta.length);
  for (let i = 0; i < delta.length; i++) {
    const d = f32At(delta, i);
    const d2 = d * d;
    const mPrev = f32At(oldM, i);
    const vPrev = f32At(oldV, i);
    const mi = beta1 * mPrev + (1 - beta1) * d;
    let vi: number;
    if (optimizer === 'fedadagrad') vi = vPrev + d2;
    else if (optimizer === 'fedyogi') vi = vPrev - (1 - beta2) * d2 * Math.sign(vPrev - d2);
    else vi = beta2 * vPrev + (1 - beta2) * d2;
    m[i] = mi;
    v[i] = vi;
    step[i] = (eta * mi) / (Math.sqrt(vi) + tau);
  }
  return {
    result: {
      values: checkFinite(step, `${optimizer} step`),
      selected: averaged.selected,
      details: { ...averaged.details, step: t, effectiveLearningRate: eta },
    },
    state: { strategy: optimizer, step: t, buffers: { m, v } },
  };
}
