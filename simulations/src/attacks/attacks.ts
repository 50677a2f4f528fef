import { FlotillaError } from '@flotilla/protocol';
import type { Rng } from '../rng/random.js';

/** A delta as the client produces it: tensor name -> float32 values (shape kept elsewhere). */
export type NamedTensors = Map<string, Float32Array>;

/** Every attack a scenario can name (`behaviour.attack`). */
export const ATTACK_NAMES = [
  'none',
  'sign-flip',
  'scaling',
  'gaussian',
  'label-flip',
  'little-is-enough',
  'inner-product',
  'backdoor',
] as const;
export type AttackName = (typeof ATTACK_NAMES)[number];

function mapValues(delta: NamedTensors, transform: (value: number) => number): NamedTensors {
  const out: NamedTensors = new Map();
  for (const [name, values] of delta) out.set(name, values.map(transform));
  return out;
}

/**
 * Sign flip: the device sends −s·Δ instead of Δ, pushing the model against the honest direction
 * (the "reverse gradient" attack of e.g. Fang et al. 2020 / Xie et al. 2020). Default s = 1.
 */
export function signFlipAttack(delta: NamedTensors, options: { scale?: number } = {}): NamedTensors {
  const scale = options.scale ?? 1;
  return mapValues(delta, (value) => -scale * value);
}

/** Scaling ("boosting", Bhagoji et al. 2019): the device sends λ·Δ. */
export function scalingAttack(delta: NamedTensors, options: { factor: number }): NamedTensors {
  return mapValues(delta, (value) => options.factor * value);
}

/** Options for {@link gaussianAttack}. */
export interface GaussianAttackOptions {
  /** Standard deviation σ of the noise. */
  std: number;
  rng: Rng;
  /** 'replace' sends pure N(0, σ²) noise (Blanchard et al. 2017's Gaussian Byzantine); 'add' sends Δ + noise. Default 'replace'. */
  mode?: 'replace' | 'add';
}

/** Gaussian attack: noise of standard deviation σ instead of (or on top of) the honest delta. */
export function gaussianAttack(delta: NamedTensors, options: GaussianAttackOptions): NamedTensors {
  const mode = options.mode ?? 'replace';
  if (!(options.std >= 0))
    throw new FlotillaError('BAD_REQUEST', `gaussian attack std must be >= 0, got ${options.std}`);
  return mapValues(delta, (value) => (mode === 'add' ? value : 0) + options.rng.normal(0, options.std));
}

/**
 * Label flip (a data poisoning attack, applied before local training): y -> permutation[y].
 * The default permutation is y -> (numClasses − 1 − y), i.e. 9 − y for MNIST.
 */
export function labelFlipAttack(
  labels: Int32Array,
  options: { numClasses: number; permutation?: readonly number[] },
): Int32Array {
  const { numClasses } = options;
  const permutation = options.permutation ?? Array.from({ length: numClasses }, (_, y) => numClasses - 1 - y);
  const sorted = [...permutation].sort((a, b) => a - b);
  if (permutation.length !== numClasses || sorted.some((value, index) => value !== index)) {
    throw new FlotillaError(
      'BAD_REQUEST',
      `label-flip permutation must be a permutation of 0..${numClasses - 1}`,
    );
  }
  return labels.map((y) => {
    const flipped = permutation[y];
    if (flipped === undefined)
      throw new FlotillaError('BAD_REQUEST', `label ${y} outside 0..${numClasses - 1}`);
    return flipped;
  });
}

/** Options for {@link applyDeltaAttack}. */
export interface DeltaAttackOptions {
  attack: AttackName;
  /**
   * Strength: s for sign-flip (default 1), λ for scaling (default 10), σ for gaussian (default 1),
   * the model-replacement boost γ for backdoor (default 1: no scaling).
   */
  scale?: number;
  /** Needed for 'gaussian'. */
  rng?: Rng;
}

/**
 * The update a Byzantine device sends in place of its honest `delta`. 'none' and 'label-flip'
 * (which acts on the data, not on the delta) return the delta unchanged.
 */
export function applyDeltaAttack(delta: NamedTensors, options: DeltaAttackOptions): NamedTensors {
  switch (options.attack) {
    case 'none':
    case 'label-flip':
      return delta;
    case 'backdoor':
      // Model replacement (Bagdasaryan et al. 2020): the poisoned update scaled by γ, default 1.
      return options.scale === undefined ? delta : scalingAttack(delta, { factor: options.scale });
    case 'sign-flip':
      return signFlipAttack(delta, { scale: options.scale ?? 1 });
    case 'scaling':
      return scalingAttack(delta, { factor: options.scale ?? 10 });
    case 'little-is-enough':
    case 'inner-product':
      throw new FlotillaError(
        'BAD_REQUEST',
        `${options.attack} is crafted from every worker's update of the round: use craftColludingUpdate`,
      );
    case 'gaussian':
      if (options.rng === undefined)
        throw new FlotillaError('BAD_REQUEST', 'the gaussian attack needs an rng');
      return gaussianAttack(delta, { std: options.scale ?? 1, rng: options.rng });
    default:
      throw new FlotillaError('BAD_REQUEST', `unknown attack ${String(options.attack)}`);
  }
}

/**
 * Which devices are Byzantine: round(fraction · numDevices) device indices chosen by `rng`
 * (sorted ascending), fixed for the whole run.
 */
export function chooseByzantineDevices(options: {
  numDevices: number;
  fraction: number;
  rng: Rng;
}): number[] {
  const { numDevices, fraction, rng } = options;
  if (!(fraction >= 0 && fraction <= 1))
    throw new FlotillaError('BAD_REQUEST', `byzantine fraction must be in [0, 1]`);
  const count = Math.round(fraction * numDevices);
  return rng
    .permutation(numDevices)
    .slice(0, count)
    .sort((a, b) => a - b);
}
