// Client-side L2 clipping of an update (Abadi et al. 2016; McMahan et al. 2018, "Learning
// Differentially Private Recurrent Language Models"): the whole update, all tensors together, is
// scaled by min(1, bound / ||update||_2). Devices clip before signing; the coordinator recomputes
// the norm from the blob to check the bound.
import { FlotillaError } from './errors.js';
import { f32At } from './checked-index.js';

export interface ClipResult<T> {
  /** New buffers (the input is never mutated); unscaled copies when `clipped` is false. */
  tensors: T;
  /** Global L2 norm of the input, before clipping. */
  norm: number;
  /** Factor applied: min(1, bound / norm); 1 when the update is within the bound. */
  scale: number;
  /** True when the update was scaled down. */
  clipped: boolean;
}

/**
 * Global L2 norm over every element of every tensor (scalars included), accumulated in float64
 * so that millions of float32 squares do not lose precision. NaN or Infinity give NaN/Infinity.
 */
export function globalL2Norm(tensors: Iterable<Float32Array>): number {
  let sum = 0;
  for (const tensor of tensors) {
    for (let i = 0; i < tensor.length; i++) {
      const v = f32At(tensor, i);
      sum += v * v;
    }
  }
  return Math.sqrt(sum);
}

function checkBound(bound: number): void {
  if (!(bound > 0) || !Number.isFinite(bound)) {
    throw new FlotillaError('BAD_REQUEST', `clip bound must be a positive finite L2 norm, got ${bound}`);
  }
}

function scaleFor(norm: number, bound: number): number {
  if (!Number.isFinite(norm)) {
    throw new FlotillaError('NON_FINITE', 'update contains NaN or Infinity; it cannot be clipped');
  }
  return norm > bound ? bound / norm : 1;
}

function scaled(tensor: Float32Array, scale: number): Float32Array {
  if (scale === 1) return tensor.slice();
  const out = new Float32Array(tensor.length);
  for (let i = 0; i < tensor.length; i++) out[i] = f32At(tensor, i) * scale;
  return out;
}

/**
 * Scales `tensors` so that their global L2 norm is at most `bound` (an L2 norm, > 0). Updates
 * already within the bound come back as bitwise-identical copies. Throws `BAD_REQUEST` for a bad
 * bound and `NON_FINITE` when the update holds NaN or Infinity.
 */
export function clipToL2Norm(tensors: Float32Array[], bound: number): ClipResult<Float32Array[]> {
  checkBound(bound);
  const norm = globalL2Norm(tensors);
  const scale = scaleFor(norm, bound);
  return { tensors: tensors.map((t) => scaled(t, scale)), norm, scale, clipped: scale < 1 };
}

/** `clipToL2Norm` over a name -> tensor map; the result keeps the names and their order. */
export function clipNamedToL2Norm(
  tensors: Map<string, Float32Array>,
  bound: number,
): ClipResult<Map<string, Float32Array>> {
  checkBound(bound);
  const norm = globalL2Norm(tensors.values());
  const scale = scaleFor(norm, bound);
  const out = new Map<string, Float32Array>();
  for (const [name, tensor] of tensors) out.set(name, scaled(tensor, scale));
  return { tensors: out, norm, scale, clipped: scale < 1 };
}
