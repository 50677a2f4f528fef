import {
  decodeFloat32Tensors,
  encodeFloat32Tensors,
  FlotillaError,
  StrategyConfigSchema,
  type StrategyConfig,
} from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import {
  aggregate,
  decodeServerOptimizerState,
  encodeServerOptimizerState,
  type AggregationConfig,
  type ServerOptimizerState,
} from './index.js';

// Two rounds on two coordinates. Round 1: updates [2, -4] (weight 1) and [0.5, -1] (weight 2)
// average to Δ1 = [1, -2]; round 2: one update Δ2 = [-1, 0.5] (weight 5).
const round1 = [
  { values: Float32Array.of(2, -4), weight: 1 },
  { values: Float32Array.of(0.5, -1), weight: 2 },
];
const round2 = [{ values: Float32Array.of(-1, 0.5), weight: 5 }];

function config(input: Partial<StrategyConfig> & { name: StrategyConfig['name'] }): StrategyConfig {
  return StrategyConfigSchema.parse(input);
}

function twoSteps(cfg: AggregationConfig): {
  step1: Float32Array;
  step2: Float32Array;
  state: ServerOptimizerState;
} {
  const first = aggregate(cfg, round1);
  expect(first.state?.step).toBe(1);
  // the state survives the trip through safetensors bytes, as the worker persists it
  if (first.state === undefined) throw new Error('no state');
  const encoded = encodeServerOptimizerState(first.state);
  const restored = decodeServerOptimizerState(
    decodeFloat32Tensors(encodeFloat32Tensors(encoded.tensors, encoded.metadata)),
  );
  const second = aggregate(cfg, round2, restored);
  if (second.state === undefined) throw new Error('no state');
  return { step1: first.result.values, step2: second.result.values, state: second.state };
}

function expectClose(actual: Float32Array, expected: number[]): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, 6));
}

describe('server optimizers, two steps against the update rules of Reddi et al. 2021 (η=1, β1=0.9, β2=0.99, τ=0.1, v₋₁=τ²)', () => {
  const adaptive = { serverLearningRate: 1, beta1: 0.9, beta2: 0.99, tau: 0.1 };

  it('FedAdam', () => {
    // m1 = 0.1Δ1 = [0.1, -0.2]; v1 = 0.99·0.01 + 0.01·Δ1² = [0.0199, 0.0499]; step = m/(√v + τ)
    // m2 = 0.9m1 + 0.1Δ2 = [-0.01, -0.13]; v2 = 0.99v1 + 0.01Δ2² = [0.029701, 0.051901]
    const { step1, step2, state } = twoSteps(config({ name: 'fedadam', ...adaptive }));
    expectClose(step1, [0.4148218161278671, -0.6184615490570765]);
    expectClose(step2, [-0.036718836945325364, -0.39656161587275346]);
    expectClose(state.buffers.v ?? new Float32Array(), [0.029701, 0.051901]);
    expectClose(state.buffers.m ?? new Float32Array(), [-0.01, -0.13]);
    expect(state.step).toBe(2);
  });

  it('FedYogi', () => {
    // v1 = τ² - 0.01Δ1² sign(τ² - Δ1²) = [0.02, 0.05] (so step1 = 0.1/(√0.02 + 0.1) = √2 - 1)
    // v2 = v1 - 0.01Δ2² sign(v1 - Δ2²) = [0.03, 0.0525]
    const { step1, step2, state } = twoSteps(config({ name: 'fedyogi', ...adaptive }));
    expectClose(step1, [Math.SQRT2 - 1, -0.6180339887498949]);
    expectClose(step2, [-0.03660254037844384, -0.3949821651108931]);
    expectClose(state.buffers.v ?? new Float32Array(), [0.03, 0.0525]);
  });

  it('FedAdagrad', () => {
    // v1 = τ² + Δ1² = [1.01, 4.01]; v2 = v1 + Δ2² = [2.01, 4.26]
    const { step1, step2, state } = twoSteps(config({ name: 'fedadagrad', ...adaptive }));
    expectClose(step1, [0.09049875621120891, -0.09512492197250393]);
    expectClose(step2, [-0.0065887234393789094, -0.06007458275933031]);
    expectClose(state.buffers.v ?? new Float32Array(), [2.01, 4.26]);
  });

  it('FedAvgM (Hsu et al. 2019): v = βv + Δ, step = ηv', () => {
    // η = 0.5, β = 0.9: step1 = 0.5Δ1 = [0.5, -1]; v2 = 0.9[1, -2] + [-1, 0.5] = [-0.1, -1.3]
    const { step1, step2, state } = twoSteps(
      config({ name: 'fedavgm', serverLearningRate: 0.5, serverMomentum: 0.9 }),
    );
    expectClose(step1, [0.5, -1]);
    expectClose(step2, [-0.05, -0.65]);
    expectClose(state.buffers.momentum ?? new Float32Array(), [-0.1, -1.3]);
  });

  it('FedAvgM with β = 0 and η = 1 is FedAvg', () => {
    const cfg = config({ name: 'fedavgm', serverLearningRate: 1, serverMomentum: 0 });
    expectClose(aggregate(cfg, round1).result.values, [1, -2]);
  });

  it('Flower-style start (v₋₁ = 0) with Adam bias correction', () => {
    // t = 1: η₁ = η√(1-β2)/(1-β1); m1 = (1-β1)Δ; v1 = (1-β2)Δ²
    // step = η√(1-β2)Δ / (√(1-β2)|Δ| + τ) with τ = 1e-3: 0.1/(0.1 + 0.001) for Δ = 1, -0.2/(0.2 + 0.001) for Δ = -2
    const cfg: AggregationConfig = {
      ...config({ name: 'fedadam', serverLearningRate: 1, beta1: 0.9, beta2: 0.99, tau: 1e-3 }),
      initialAccumulator: 0,
      biasCorrection: true,
    };
    const { result } = aggregate(cfg, [{ values: Float32Array.of(1, -2), weight: 1 }]);
    expectClose(result.values, [0.1 / 0.101, -0.2 / 0.201]);
  });

  it('refuses state of another optimizer or another model size', () => {
    const adamState = aggregate(config({ name: 'fedadam' }), round1).state;
    expect(() => aggregate(config({ name: 'fedyogi' }), round1, adamState)).toThrow(FlotillaError);
    const bigger = aggregate(config({ name: 'fedadam' }), [{ values: new Float32Array(3), weight: 1 }]).state;
    try {
      aggregate(config({ name: 'fedadam' }), round1, bigger);
      expect.unreachable();
    } catch (error) {
      expect(FlotillaError.is(error, 'SHAPE_MISMATCH')).toBe(true);
    }
  });

  it('does not mutate the state it is given', () => {
    const cfg = config({ name: 'fedadam' });
    const state = aggregate(cfg, round1).state;
    const before = Array.from(state?.buffers.m ?? []);
    aggregate(cfg, round2, state);
    expect(Array.from(state?.buffers.m ?? [])).toEqual(before);
    expect(state?.step).toBe(1);
  });
});
