// FedAvgM (Hsu et al. 2019, "Measuring the Effects of Non-Identical Data Distribution"): server
// momentum on the averaged delta Δ: v_t = β v_{t-1} + Δ_t, step = η v_t (Flower's FedAvgM with
// pseudo-gradient -Δ). With β = 0 and η = 1 it is plain FedAvg.
import { checkFinite } from './checks.js';
import { aggregateFedAvg } from './fedavg.js';
import { resumeState, stateBuffer } from './server-state.js';
import type { AggregationResult, ServerOptimizerState, WeightedUpdate } from './types.js';
import { f32At } from '@flotilla/protocol';

export interface FedAvgMOptions {
  /** Server learning rate η. */
  serverLearningRate: number;
  /** Server momentum β in [0, 1). */
  serverMomentum: number;
}

export function aggregateFedAvgM(
  updates: readonly WeightedUpdate[],
  options: FedAvgMOptions,
  previous?: ServerOptimizerState,
): { result: AggregationResult; state: ServerOptimizerState } {
  const averaged = aggregateFedAvg(updates);
  const delta = averaged.values;
  const prior = resumeState('fedavgm', delta.length, { momentum: 0 }, previous);
  const oldMomentum = stateBuffer(prior, 'momentum');
  const momentum = new Float32Array(delta.length);
  const step = new Float32Array(delta.length);
  const { serverLearningRate: eta, serverMomentum: beta } = options;
  for (let i = 0; i < delta.length; i++) {
    const v = beta * f32At(oldMomentum, i) + f32At(delta, i);
    momentum[i] = v;
    step[i] = eta * v;
  }
  return {
    result: {
      values: checkFinite(step, 'FedAvgM step'),
      selected: averaged.selected,
      details: { ...averaged.details, step: prior.step + 1 },
    },
    state: { strategy: 'fedavgm', step: prior.step + 1, buffers: { momentum } },
  };
}
