import { FlotillaError, f32At } from '@flotilla/protocol';

/** How far one adapted module moved from the frozen base: drift = ‖ΔW‖_F / ‖W‖_F. */
export interface ModuleDrift {
  /** Target module name (e.g. `dense_1`). */
  module: string;
  kind: 'lora' | 'bias' | 'full';
  /** ‖ΔW‖_F (for bias, ‖Δb‖_2). */
  deltaNorm: number;
  /** ‖W‖_F of the base weight (for bias, ‖b‖_2). */
  baseNorm: number;
  /** deltaNorm / baseNorm; 0 when both are 0, Infinity when only the base is 0. */
  drift: number;
}

/** Inputs of {@link loraModuleDrift}. Shapes are PEFT's: `lora_A` is [r, in], `lora_B` is [out, r]. */
export interface LoraDriftInput {
  module: string;
  /** lora_A values, row-major [r, in]. */
  a: Float32Array;
  aShape: readonly number[];
  /** lora_B values, row-major [out, r]. */
  b: Float32Array;
  bShape: readonly number[];
  /** LoRA alpha; the update is ΔW = (alpha / r) · B · A. */
  alpha: number;
  /**
   * The base weight: out·in values in any layout (tfjs Dense kernels are [in, out]; the
   * Frobenius norm does not depend on the layout).
   */
  base: Float32Array;
}

function sumOfSquares(values: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += f32At(values, i) ** 2;
  return sum;
}

function ratio(deltaNorm: number, baseNorm: number): number {
  if (deltaNorm === 0) return 0;
  return baseNorm === 0 ? Infinity : deltaNorm / baseNorm;
}

/**
 * ‖(alpha/r)·B·A‖_F / ‖W‖_F for one LoRA module. ‖BA‖_F² is computed as Σ_ij (BᵀB)_ij (AAᵀ)_ij
 * (two r×r Gram matrices, O((in + out)·r²), float64) instead of forming the out×in product.
 */
export function loraModuleDrift(input: LoraDriftInput): ModuleDrift {
  const { a, b, alpha, base, module } = input;
  const [r, inDim] = input.aShape;
  const [outDim, rB] = input.bShape;
  if (
    input.aShape.length !== 2 ||
    input.bShape.length !== 2 ||
    r === undefined ||
    inDim === undefined ||
    outDim === undefined ||
    r !== rB ||
    r < 1 ||
    a.length !== r * inDim ||
    b.length !== outDim * r
  ) {
    throw new FlotillaError(
      'SHAPE_MISMATCH',
      `${module}: lora_A must be [r, in] and lora_B [out, r] with the same r`,
    );
  }
  if (base.length !== outDim * inDim) {
    throw new FlotillaError(
      'SHAPE_MISMATCH',
      `${module}: base weight has ${base.length} values, expected out·in = ${outDim * inDim}`,
    );
  }
  // gramA[p][q] = Σ_j A[p][j] A[q][j];  gramB[p][q] = Σ_i B[i][p] B[i][q]
  let frobeniusSq = 0;
  for (let p = 0; p < r; p++) {
    for (let q = p; q < r; q++) {
      let gA = 0;
      for (let j = 0; j < inDim; j++) gA += f32At(a, p * inDim + j) * f32At(a, q * inDim + j);
      let gB = 0;
      for (let i = 0; i < outDim; i++) gB += f32At(b, i * r + p) * f32At(b, i * r + q);
      frobeniusSq += (p === q ? 1 : 2) * gA * gB;
    }
  }
  const deltaNorm = (Math.abs(alpha) / r) * Math.sqrt(Math.max(0, frobeniusSq));
  const baseNorm = Math.sqrt(sumOfSquares(base));
  return { module, kind: 'lora', deltaNorm, baseNorm, drift: ratio(deltaNorm, baseNorm) };
}

/** Inputs of {@link biasModuleDrift}. */
export interface BiasDriftInput {
  module: string;
  /** Δb = adapted bias − base bias. */
  delta: Float32Array;
  /** The base bias b. */
  base: Float32Array;
}

/** ‖Δb‖ / ‖b‖ for one bias module. */
export function biasModuleDrift(input: BiasDriftInput): ModuleDrift {
  return valueForValueDrift(input, 'bias', { delta: 'bias delta', base: 'base' });
}

/** Inputs of {@link fullModuleDrift}. */
export interface FullDriftInput {
  module: string;
  /** The kernel offset ΔW: out·in values (full mode sends [out, in]; the norm ignores layout). */
  delta: Float32Array;
  /** The base kernel W: out·in values in any layout (tfjs: [in, out]). */
  base: Float32Array;
}

/** ‖ΔW‖_F / ‖W‖_F for one fully fine-tuned module (full mode's kernel offset). */
export function fullModuleDrift(input: FullDriftInput): ModuleDrift {
  return valueForValueDrift(input, 'full', { delta: 'kernel offset', base: 'base kernel' });
}

/**
 * ‖Δ‖ / ‖base‖ over all values of a module whose delta holds one value per base value (bias and
 * full modes); `names` say what the two are in the SHAPE_MISMATCH message.
 */
function valueForValueDrift(
  input: BiasDriftInput | FullDriftInput,
  kind: 'bias' | 'full',
  names: { delta: string; base: string },
): ModuleDrift {
  if (input.delta.length !== input.base.length) {
    throw new FlotillaError(
      'SHAPE_MISMATCH',
      `${input.module}: ${names.delta} has ${input.delta.length} values, ${names.base} has ${input.base.length}`,
    );
  }
  const deltaNorm = Math.sqrt(sumOfSquares(input.delta));
  const baseNorm = Math.sqrt(sumOfSquares(input.base));
  return { module: input.module, kind, deltaNorm, baseNorm, drift: ratio(deltaNorm, baseNorm) };
}
