import { FlotillaError } from '@flotilla/protocol';
import type { NamedTensor, NamedTensorMap } from '../adapters/adapter-tensors.js';
import type { SeededRng } from '../model/seeded-rng.js';

/** One tensor quantized to int8: value ≈ q·scale, |q| ≤ 127, scale an f32 ≥ 0. */
export interface QuantizedTensor {
  shape: number[];
  q: Int8Array;
  scale: number;
}

export type QuantizedDelta = Map<string, QuantizedTensor>;

/** Global L2 norm over every tensor, accumulated in float64. */
export function globalNorm(values: Iterable<Float32Array>): number {
  let sum = 0;
  for (const array of values) for (const v of array) sum += v * v;
  return Math.sqrt(sum);
}

/** q·scale rounded to f32, the one dequantization every party uses. */
export function dequantizeTensor(tensor: QuantizedTensor): NamedTensor {
  const values = new Float32Array(tensor.q.length);
  for (let i = 0; i < values.length; i++) values[i] = Math.fround((tensor.q[i] ?? 0) * tensor.scale);
  return { shape: [...tensor.shape], values };
}

export function dequantizeDelta(delta: QuantizedDelta): NamedTensorMap {
  return new Map([...delta].map(([name, t]) => [name, dequantizeTensor(t)]));
}

function quantizeTensor(values: Float32Array, rng: SeededRng): { q: Int8Array; scale: number } {
  let maxAbs = 0;
  for (const v of values) maxAbs = Math.max(maxAbs, Math.abs(v));
  const q = new Int8Array(values.length);
  if (maxAbs === 0) return { q, scale: 0 };
  const scale = maxAbs / 127;
  for (let i = 0; i < values.length; i++) {
    // Stochastic rounding: up with probability equal to the fractional part, so E[q] = v/scale.
    const x = (values[i] ?? 0) / scale;
    const lower = Math.floor(x);
    const rounded = lower + (rng.nextFloat() < x - lower ? 1 : 0);
    q[i] = Math.max(-127, Math.min(127, rounded));
  }
  return { q, scale: Math.fround(scale) };
}

export interface QuantizeDeltaOptions {
  /** The delta, by tensor name. Not mutated. */
  tensors: ReadonlyMap<string, NamedTensor>;
  /** Global L2 bound (the round's clip norm); the dequantized delta never exceeds it. */
  clipNorm: number;
  /** Drives the stochastic rounding; seed it for reproducible uploads. */
  rng: SeededRng;
}

/**
 * Clips the delta to `clipNorm` (global L2), then quantizes each tensor to int8 with a symmetric
 * per-tensor scale (max|v|/127) and stochastic rounding, which is unbiased. Rounding up can push
 * the dequantized norm past the bound; when it does, every scale is shrunk until the
 * dequantized f32 values are within it (a tiny bias paid only by updates at the bound).
 */
export function quantizeDelta(options: QuantizeDeltaOptions): {
  delta: QuantizedDelta;
  norm: number;
  clipped: boolean;
} {
  const { clipNorm, rng } = options;
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm))
    throw new FlotillaError('BAD_REQUEST', 'clipNorm must be a positive number');
  for (const [name, t] of options.tensors) {
    for (const v of t.values)
      if (!Number.isFinite(v))
        throw new FlotillaError('NON_FINITE', `delta tensor '${name}' holds a non-finite value`);
  }
  const inputNorm = globalNorm([...options.tensors.values()].map((t) => t.values));
  const clipScale = inputNorm > clipNorm ? clipNorm / inputNorm : 1;
  const delta: QuantizedDelta = new Map();
  for (const [name, t] of options.tensors) {
    const clipped = clipScale === 1 ? t.values : t.values.map((v) => v * clipScale);
    const { q, scale } = quantizeTensor(clipped, rng);
    delta.set(name, { shape: [...t.shape], q, scale });
  }
  let norm = globalNorm([...dequantizeDelta(delta).values()].map((t) => t.values));
  for (let attempt = 0; norm > clipNorm; attempt++) {
    if (attempt > 60)
      throw new FlotillaError('INTERNAL', 'could not bring the quantized delta within the clip bound');
    // Shrink a little more each attempt: f32 rounding of scale·q can land just above the target.
    const factor = (clipNorm / norm) * (1 - 2 ** -23 * 2 ** attempt);
    for (const t of delta.values()) t.scale = Math.fround(t.scale * factor);
    norm = globalNorm([...dequantizeDelta(delta).values()].map((t) => t.values));
  }
  return { delta, norm, clipped: clipScale < 1 };
}
