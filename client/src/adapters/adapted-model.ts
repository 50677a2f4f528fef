import type { AdapterSpec } from '@flotilla/protocol';
import {
  FlotillaError,
  biasTensorName,
  initialLoraA,
  loraTensorNames,
  weightTensorName,
} from '@flotilla/protocol';
import * as tf from '@tensorflow/tfjs';
import { adaptedDense, plainDense } from './adapted-dense.js';
import type { NamedTensor, NamedTensorMap } from './adapter-tensors.js';
import { checkTensorMap } from './adapter-tensors.js';
import type { DenseStep, LayerStep } from './layer-plan.js';
import { applyActivation, planLayers } from './layer-plan.js';

export interface CreateAdaptedModelOptions {
  /** The frozen base. Its variables are read, never written; it must outlive the adapted model. */
  base: tf.LayersModel;
  spec: AdapterSpec;
  /**
   * 'custom': hand-written gradients with explicit transposes (fast on wasm, where transposed
   * matMuls are slow; slower on the cpu backend, where the extra transposes cost more).
   * 'autodiff': plain ops and tfjs autodiff; also the reference the custom gradients are tested
   * against. 'auto' (default): 'custom' while the active backend is wasm, else 'autodiff'.
   */
  gradients?: 'auto' | 'custom' | 'autodiff';
}

/** A base model plus trainable adapter tensors; the base weights are never modified. */
export interface AdaptedModel {
  readonly spec: AdapterSpec;
  /** True when the base ends in a softmax, so `predict` = softmax(`logits`). */
  readonly outputIsSoftmax: boolean;
  /** Width of the output (number of classes for a classifier). */
  readonly outputUnits: number;
  /** Output before a final softmax, [n, classes]. x: [n, ...base input shape]. */
  logits(x: tf.Tensor): tf.Tensor2D;
  /** What the adapted base outputs, [n, outputs]. */
  predict(x: tf.Tensor): tf.Tensor2D;
  /**
   * Every adapter tensor by PEFT name (copies): lora_A [r, in], lora_B [out, r], bias offset [out],
   * full mode's kernel offset [out, in] (PEFT layout: the adapted tfjs kernel is W + offsetᵀ).
   */
  adapterTensors(): NamedTensorMap;
  /** PEFT name → shape of every adapter tensor. */
  adapterShapes(): Map<string, number[]>;
  /** Replaces every adapter tensor; names and shapes must match exactly (SHAPE_MISMATCH). */
  loadAdapterTensors(tensors: ReadonlyMap<string, NamedTensor>): void;
  /**
   * Adds a delta to the adapter (any subset of names). A delta on a frozen tensor (FFA-LoRA's A)
   * must be all zeros, else BAD_REQUEST.
   */
  applyDelta(delta: ReadonlyMap<string, NamedTensor>): void;
  /**
   * The variables local training updates (lora: A and B; ffa-lora: B; bias: bias offsets; full:
   * kernel offsets [out, in] and bias offsets). The base's own weights are never among them.
   */
  trainableVariables(): tf.Variable[];
  /** PEFT name → trainable variable. */
  trainableVariableMap(): Map<string, tf.Variable>;
  dispose(): void;
}

interface ModuleState {
  step: DenseStep;
  kernelT: tf.Tensor2D;
  a: tf.Variable<tf.Rank.R2> | null;
  b: tf.Variable<tf.Rank.R2> | null;
  biasOffset: tf.Variable<tf.Rank.R1> | null;
  /** Full mode's kernel offset D [out, in]; the layer computes x·(W + Dᵀ). */
  kernelOffset: tf.Variable<tf.Rank.R2> | null;
}

/**
 * Wraps a frozen base model with adapters on the dense layers named in `spec.targetModules`.
 * The forward pass is evaluated layer by layer: Dense layers by the adapted product (on the last
 * axis of any rank), other layers (convolutions, pooling, embeddings, RNNs…) frozen by their own
 * `apply`. Graphs that are not a single chain are refused with BAD_REQUEST.
 */
export function createAdaptedModel(options: CreateAdaptedModelOptions): AdaptedModel {
  const { base, spec } = options;
  const gradients = options.gradients ?? 'auto';
  const steps = planLayers(base);
  const dense = new Map<string, DenseStep>();
  for (const step of steps) if (step.kind === 'dense') dense.set(step.name, step);
  for (const module of spec.targetModules) {
    if (!dense.has(module)) {
      const other = steps.find((step) => step.name === module);
      throw new FlotillaError(
        'BAD_REQUEST',
        other?.kind === 'frozen'
          ? `target module '${module}' is a ${other.className}: adapters attach to Dense layers (the rest of the base stays frozen)`
          : `target module '${module}' is not a dense layer of the base model`,
      );
    }
  }
  const scale = spec.alpha / spec.r;
  const modules = new Map<string, ModuleState>();
  const kernelT = new Map<string, tf.Tensor2D>();
  for (const step of dense.values()) kernelT.set(step.name, tf.keep(tf.transpose(step.kernel)));
  const shapes = new Map<string, number[]>();
  const trainable = new Map<string, tf.Variable>();
  const frozenNames = new Set<string>();
  const variables = new Map<string, tf.Variable>();

  for (const module of spec.targetModules) {
    const step = dense.get(module);
    const transposed = kernelT.get(module);
    if (step === undefined || transposed === undefined) continue;
    const [inFeatures, outFeatures] = step.kernel.shape;
    const state: ModuleState = {
      step,
      kernelT: transposed,
      a: null,
      b: null,
      biasOffset: null,
      kernelOffset: null,
    };
    if (spec.mode === 'full') {
      // Zero offsets: version 0 equals the base. Stored in PEFT layout so that trained deltas
      // (variable − snapshot) come out in the wire layout without a transpose.
      const name = weightTensorName(module);
      state.kernelOffset = tf.tidy(() => tf.variable<tf.Rank.R2>(tf.zeros([outFeatures, inFeatures]), true));
      shapes.set(name, [outFeatures, inFeatures]);
      trainable.set(name, state.kernelOffset);
      variables.set(name, state.kernelOffset);
    }
    if (spec.mode === 'bias' || spec.mode === 'full') {
      const name = biasTensorName(module);
      state.biasOffset = tf.tidy(() => tf.variable<tf.Rank.R1>(tf.zeros([outFeatures]), true));
      shapes.set(name, [outFeatures]);
      trainable.set(name, state.biasOffset);
      variables.set(name, state.biasOffset);
    } else {
      const names = loraTensorNames(module);
      const a0 = initialLoraA(spec, module, inFeatures);
      // tidy disposes the initial-value tensors; the variables outlive it.
      state.a = tf.tidy(() => tf.variable(tf.tensor2d(a0, [spec.r, inFeatures]), spec.mode === 'lora'));
      state.b = tf.tidy(() => tf.variable<tf.Rank.R2>(tf.zeros([outFeatures, spec.r]), true));
      shapes.set(names.a, [spec.r, inFeatures]);
      shapes.set(names.b, [outFeatures, spec.r]);
      variables.set(names.a, state.a);
      variables.set(names.b, state.b);
      if (spec.mode === 'lora') trainable.set(names.a, state.a);
      else frozenNames.add(names.a);
      trainable.set(names.b, state.b);
    }
    modules.set(module, state);
  }

  const last = steps[steps.length - 1];
  const outputIsSoftmax =
    (last?.kind === 'dense' || last?.kind === 'activation') && last.activation === 'softmax';

  const runDense = (step: DenseStep, x: tf.Tensor2D, inputNeedsGrad: boolean): tf.Tensor2D => {
    const state = modules.get(step.name);
    const transposed = kernelT.get(step.name);
    if (transposed === undefined)
      throw new FlotillaError('INTERNAL', `no transposed kernel for '${step.name}'`);
    let bias = step.bias;
    if (state?.biasOffset)
      bias = bias === null ? state.biasOffset : tf.add<tf.Tensor1D>(bias, state.biasOffset);
    const lora = state?.a && state.b ? { a: state.a, b: state.b, scale } : null;
    const args = {
      x,
      kernel: step.kernel,
      kernelT: transposed,
      bias,
      lora,
      kernelOffset: state?.kernelOffset ?? null,
      grad: {
        x: inputNeedsGrad,
        bias: state?.biasOffset != null,
        a: spec.mode === 'lora' && lora !== null,
        b: lora !== null,
        offset: state?.kernelOffset != null,
      },
    };
    const custom = gradients === 'custom' || (gradients === 'auto' && tf.getBackend() === 'wasm');
    return custom ? adaptedDense(args) : plainDense(args);
  };

  const evaluate = (x: tf.Tensor, stopBeforeSoftmax: boolean): tf.Tensor2D =>
    tf.tidy(() => {
      let h = x;
      let upstreamTrainable = false;
      steps.forEach((step: LayerStep, index) => {
        const isLast = index === steps.length - 1;
        switch (step.kind) {
          case 'identity':
            return;
          case 'flatten':
            h = tf.reshape(h, [h.shape[0] ?? -1, -1]);
            return;
          case 'reshape':
            h = tf.reshape(h, [h.shape[0] ?? -1, ...step.targetShape]);
            return;
          case 'activation':
            if (!(isLast && stopBeforeSoftmax && step.activation === 'softmax'))
              h = applyActivation(step.activation, h);
            return;
          case 'frozen':
            h = step.layer.apply(h) as tf.Tensor;
            return;
          case 'dense': {
            // A Dense layer acts on the last axis: [n, …, in] is run as [n·…, in] and reshaped back.
            const leading = h.shape.slice(0, -1);
            const flat =
              h.rank === 2 ? (h as tf.Tensor2D) : tf.reshape<tf.Rank.R2>(h, [-1, h.shape[h.rank - 1] ?? -1]);
            const out = runDense(step, flat, upstreamTrainable);
            h = h.rank === 2 ? out : tf.reshape(out, [...leading, out.shape[1]]);
            if (modules.has(step.name)) upstreamTrainable = true;
            if (!(isLast && stopBeforeSoftmax && step.activation === 'softmax'))
              h = applyActivation(step.activation, h);
            return;
          }
        }
      });
      if (h.rank !== 2)
        throw new FlotillaError('BAD_REQUEST', `the base model output has rank ${h.rank}, expected 2`);
      return h as tf.Tensor2D;
    });

  const readAll = (): NamedTensorMap => {
    const out: NamedTensorMap = new Map();
    for (const [name, variable] of variables) {
      out.set(name, { shape: [...variable.shape], values: Float32Array.from(variable.dataSync()) });
    }
    return out;
  };

  const outputUnits = base.outputs[0]?.shape[1] ?? 0;
  return {
    spec,
    outputIsSoftmax,
    outputUnits,
    logits: (x) => evaluate(x, true),
    predict: (x) => evaluate(x, false),
    adapterTensors: readAll,
    adapterShapes: () => new Map([...shapes].map(([k, v]) => [k, [...v]])),
    loadAdapterTensors(tensors) {
      checkTensorMap(tensors, shapes);
      for (const [name, tensor] of tensors) {
        const variable = variables.get(name);
        if (variable !== undefined) tf.tidy(() => variable.assign(tf.tensor(tensor.values, tensor.shape)));
      }
    },
    applyDelta(delta) {
      checkTensorMap(delta, shapes, { partial: true });
      for (const [name, tensor] of delta) {
        if (frozenNames.has(name) && tensor.values.some((v) => v !== 0)) {
          throw new FlotillaError(
            'BAD_REQUEST',
            `adapter tensor '${name}' is frozen in ${spec.mode} mode; its delta must be zero`,
          );
        }
      }
      for (const [name, tensor] of delta) {
        const variable = variables.get(name);
        if (variable === undefined || frozenNames.has(name)) continue;
        tf.tidy(() => variable.assign(tf.add(variable, tf.tensor(tensor.values, tensor.shape))));
      }
    },
    trainableVariables: () => [...trainable.values()],
    trainableVariableMap: () => new Map(trainable),
    dispose() {
      for (const variable of variables.values()) variable.dispose();
      for (const t of kernelT.values()) t.dispose();
      variables.clear();
      trainable.clear();
      kernelT.clear();
    },
  };
}
