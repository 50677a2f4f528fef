import { FlotillaError } from '@flotilla/protocol';
import * as tf from '@tensorflow/tfjs';

/**
 * The adapted dense layer  y = x·(W + Dᵀ) + b + s·(x·Aᵀ)·Bᵀ  with W [in, out] (tfjs layout), b [out],
 * A [r, in], B [out, r], D [out, in] (PEFT layout; D is full mode's kernel offset), s = alpha / r.
 *
 * Why a custom gradient: autodiff of matMul produces matMuls with transpose flags, and the wasm
 * backend runs those 8–15x slower than an explicit transpose followed by a plain matMul. Every
 * product below (forward and backward) is a plain matMul on explicitly transposed operands,
 * and Wᵀ is precomputed once because W is frozen.
 */
export interface AdaptedDenseArgs {
  /** Input [n, in]. */
  x: tf.Tensor2D;
  /** Frozen kernel [in, out]. */
  kernel: tf.Tensor2D;
  /** Frozen kernelᵀ [out, in], precomputed. */
  kernelT: tf.Tensor2D;
  /** Bias [out] (frozen, or the trainable bias of bias mode), or null for a bias-free layer. */
  bias: tf.Tensor1D | null;
  /** LoRA factors, or null for a layer without LoRA. */
  lora: { a: tf.Tensor2D; b: tf.Tensor2D; scale: number } | null;
  /** Full mode's additive kernel offset D [out, in] (PEFT layout), or null. */
  kernelOffset: tf.Tensor2D | null;
  /** Which inputs need gradients; anything not listed is treated as a constant. */
  grad: { x: boolean; bias: boolean; a: boolean; b: boolean; offset: boolean };
}

type Key = 'x' | 'bias' | 'a' | 'b' | 'offset';

/** Pre-activation output [n, out] of the adapted dense layer, with hand-written gradients. */
export function adaptedDense(args: AdaptedDenseArgs): tf.Tensor2D {
  const { kernel, kernelT, lora } = args;
  const tensors: Partial<Record<Key, tf.Tensor>> = { x: args.x };
  if (args.bias !== null) tensors.bias = args.bias;
  if (lora !== null) {
    tensors.a = lora.a;
    tensors.b = lora.b;
  }
  if (args.kernelOffset !== null) tensors.offset = args.kernelOffset;
  const keys = (['x', 'bias', 'a', 'b', 'offset'] as const).filter(
    (k) => args.grad[k] && tensors[k] !== undefined,
  );
  if (keys.length === 0) {
    return denseValue({
      x: args.x,
      kernel:
        args.kernelOffset === null ? kernel : tf.add<tf.Tensor2D>(kernel, tf.transpose(args.kernelOffset)),
      bias: args.bias ?? undefined,
      a: lora?.a,
      b: lora?.b,
      scale: lora?.scale ?? 0,
    }).y;
  }
  const constant = (k: Key): tf.Tensor | undefined => tensors[k];

  const op = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = inputs[inputs.length - 1] as tf.GradSaveFunc;
    const get = (k: Key): tf.Tensor | undefined => {
      const i = keys.indexOf(k);
      return i >= 0 ? (inputs[i] as tf.Tensor) : constant(k);
    };
    const x = get('x') as tf.Tensor2D;
    const bias = get('bias') as tf.Tensor1D | undefined;
    const a = get('a') as tf.Tensor2D | undefined;
    const b = get('b') as tf.Tensor2D | undefined;
    const offset = get('offset') as tf.Tensor2D | undefined;
    // Effective kernel W + Dᵀ [in, out]; its transpose Wᵀ + D [out, in] is what dx needs.
    const effective = offset === undefined ? kernel : tf.add<tf.Tensor2D>(kernel, tf.transpose(offset));
    const { y, xa } = denseValue({ x, kernel: effective, bias, a, b, scale: lora?.scale ?? 0 });
    save(xa === null ? [x] : [x, xa]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const savedX = saved[0] as tf.Tensor2D;
        const savedXa = saved[1] as tf.Tensor2D | undefined;
        // g = dy·B  [n, r], shared by dA and dx.
        const g = b !== undefined ? tf.matMul<tf.Tensor2D>(dy, b) : null;
        const scale = lora?.scale ?? 0;
        const need = (t: tf.Tensor2D | null | undefined): tf.Tensor2D => {
          if (t === null || t === undefined)
            throw new FlotillaError('INTERNAL', 'adapted dense: missing saved tensor');
          return t;
        };
        return keys.map((k) => {
          switch (k) {
            case 'x': {
              const dx = tf.matMul(dy, offset === undefined ? kernelT : tf.add(kernelT, offset));
              return g !== null && a !== undefined ? tf.add(dx, tf.mul(tf.matMul(g, a), scale)) : dx;
            }
            case 'bias':
              return tf.sum(dy, 0);
            case 'a': // dA = s·gᵀ·x  [r, in]
              return tf.mul(tf.matMul(tf.transpose(need(g)), savedX), scale);
            case 'b': // dB = s·dyᵀ·(x·Aᵀ)  [out, r]
              return tf.mul(tf.matMul(tf.transpose(dy), need(savedXa)), scale);
            case 'offset': // dD = (xᵀ·dy)ᵀ = dyᵀ·x  [out, in]
              return tf.matMul(tf.transpose(dy), savedX);
          }
        });
      },
    };
  });
  return op(...keys.map((k) => tensors[k] as tf.Tensor));
}

/** Forward value with explicit transposes only; `xa` = x·Aᵀ [n, r] is kept for dB. */
function denseValue(args: {
  x: tf.Tensor2D;
  kernel: tf.Tensor2D;
  bias: tf.Tensor1D | undefined;
  a: tf.Tensor2D | undefined;
  b: tf.Tensor2D | undefined;
  scale: number;
}): { y: tf.Tensor2D; xa: tf.Tensor2D | null } {
  let y: tf.Tensor2D = tf.matMul(args.x, args.kernel);
  if (args.bias !== undefined) y = tf.add<tf.Tensor2D>(y, args.bias);
  if (args.a === undefined || args.b === undefined) return { y, xa: null };
  const xa = tf.matMul<tf.Tensor2D>(args.x, tf.transpose(args.a));
  return {
    y: tf.add<tf.Tensor2D>(
      y,
      tf.mul<tf.Tensor2D>(tf.matMul(xa, tf.transpose<tf.Tensor2D>(args.b)), args.scale),
    ),
    xa,
  };
}

/** The same layer written with plain ops, differentiated by tfjs autodiff (reference and baseline). */
export function plainDense(args: AdaptedDenseArgs): tf.Tensor2D {
  const kernel =
    args.kernelOffset === null
      ? args.kernel
      : tf.add<tf.Tensor2D>(args.kernel, tf.transpose(args.kernelOffset));
  let y: tf.Tensor2D = tf.matMul(args.x, kernel);
  if (args.bias !== null) y = tf.add(y, args.bias);
  if (args.lora !== null) {
    const { a, b, scale } = args.lora;
    y = tf.add(y, tf.mul(tf.matMul(tf.matMul(args.x, a, false, true), b, false, true), scale));
  }
  return y;
}
