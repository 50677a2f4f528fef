import { FlotillaError } from '@flotilla/protocol';
import * as tf from '@tensorflow/tfjs';

/** Activations the functional forward pass can evaluate (tfjs/Keras identifiers). */
const ACTIVATIONS = {
  linear: (x: tf.Tensor) => x,
  relu: (x: tf.Tensor) => tf.relu(x),
  relu6: (x: tf.Tensor) => tf.relu6(x),
  elu: (x: tf.Tensor) => tf.elu(x),
  selu: (x: tf.Tensor) => tf.selu(x),
  sigmoid: (x: tf.Tensor) => tf.sigmoid(x),
  tanh: (x: tf.Tensor) => tf.tanh(x),
  softplus: (x: tf.Tensor) => tf.softplus(x),
  softsign: (x: tf.Tensor) => tf.div(x, tf.add(tf.abs(x), 1)),
  softmax: (x: tf.Tensor) => tf.softmax(x),
} as const;
export type ActivationName = keyof typeof ACTIVATIONS;

export function applyActivation(name: ActivationName, x: tf.Tensor): tf.Tensor {
  return ACTIVATIONS[name](x);
}

/** A frozen Dense layer of the base: kernel [in, out] (tfjs layout), optional bias [out]. */
export interface DenseStep {
  kind: 'dense';
  name: string;
  kernel: tf.Tensor2D;
  bias: tf.Tensor1D | null;
  activation: ActivationName;
}

export type LayerStep =
  | DenseStep
  /**
   * Any other layer (Conv2D, pooling, Embedding, LSTM, GRU, normalization…): part of the frozen
   * base, run by its own `apply` in inference mode; gradients flow through it to adapters upstream.
   */
  | { kind: 'frozen'; name: string; className: string; layer: tf.layers.Layer }
  | { kind: 'flatten'; name: string }
  | { kind: 'reshape'; name: string; targetShape: number[] }
  | { kind: 'activation'; name: string; activation: ActivationName }
  /** InputLayer, and Dropout (evaluated as at inference, also while training adapters). */
  | { kind: 'identity'; name: string };

/**
 * Layer classes with a step of their own. Any other single-input, single-output layer is run
 * frozen by its own `apply` (a `frozen` step); adapters attach to Dense layers only.
 */
export const SUPPORTED_LAYER_CLASSES = [
  'InputLayer',
  'Dense',
  'Flatten',
  'Reshape',
  'Activation',
  'Dropout',
] as const;

function unsupported(message: string): FlotillaError {
  return new FlotillaError(
    'BAD_REQUEST',
    `${message}; supported: a chain of single-input, single-output layers (adapters on Dense layers)`,
  );
}

function activationOf(layer: tf.layers.Layer): ActivationName {
  const raw = layer.getConfig()['activation'] ?? 'linear';
  if (typeof raw === 'string' && raw in ACTIVATIONS) return raw as ActivationName;
  throw unsupported(`layer '${layer.name}' uses activation ${JSON.stringify(raw)}`);
}

/** The weight tensors of a layer in getWeights() order (the live variables, not copies). */
function denseStep(layer: tf.layers.Layer): DenseStep {
  const config = layer.getConfig();
  const [kernel, bias] = layer.getWeights();
  if (kernel?.rank !== 2) throw unsupported(`dense layer '${layer.name}' has no 2-D kernel`);
  const useBias = config['useBias'] !== false;
  if (useBias && bias?.rank !== 1) throw unsupported(`dense layer '${layer.name}' has no 1-D bias`);
  return {
    kind: 'dense',
    name: layer.name,
    kernel: kernel as tf.Tensor2D,
    bias: useBias ? (bias as tf.Tensor1D) : null,
    activation: activationOf(layer),
  };
}

/**
 * Turns a base model into the list of steps the functional forward pass evaluates. Only single
 * input, single output chains (each layer fed by the one before it, each layer used once) are
 * supported: Sequential models (MLPs, CNNs, embedding + RNN stacks) and their functional
 * equivalents. A stateful RNN is refused: its state would carry over between batches.
 */
export function planLayers(model: tf.LayersModel): LayerStep[] {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw unsupported('the base model must have exactly one input and one output');
  }
  const steps: LayerStep[] = [];
  let previous: tf.layers.Layer | null = null;
  for (const layer of model.layers) {
    const className = layer.getClassName();
    if (layer.inboundNodes.length > 1) throw unsupported(`layer '${layer.name}' is shared`);
    const inbound = layer.inboundNodes[0]?.inboundLayers ?? [];
    const chained =
      previous === null
        ? inbound.length === 0 || inbound.every((l) => l.getClassName() === 'InputLayer')
        : inbound.length === 1 && inbound[0] === previous;
    if (!chained) throw unsupported(`layer '${layer.name}' is not fed by the layer before it`);
    previous = layer;
    switch (className) {
      case 'InputLayer':
      case 'Dropout':
        steps.push({ kind: 'identity', name: layer.name });
        break;
      case 'Dense':
        steps.push(denseStep(layer));
        break;
      case 'Flatten':
        steps.push({ kind: 'flatten', name: layer.name });
        break;
      case 'Reshape': {
        const target = layer.getConfig()['targetShape'];
        if (!Array.isArray(target) || !target.every((d): d is number => typeof d === 'number')) {
          throw unsupported(`reshape layer '${layer.name}' has no numeric targetShape`);
        }
        steps.push({ kind: 'reshape', name: layer.name, targetShape: target });
        break;
      }
      case 'Activation':
        steps.push({ kind: 'activation', name: layer.name, activation: activationOf(layer) });
        break;
      default:
        if (layer.getConfig()['stateful'] === true)
          throw unsupported(`layer '${layer.name}' is a stateful ${className}`);
        steps.push({ kind: 'frozen', name: layer.name, className, layer });
    }
  }
  return steps;
}
