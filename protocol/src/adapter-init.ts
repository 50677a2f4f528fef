import type { AdapterSpec } from './messages/adapter-spec.js';
import { SeededRandom, fnv1a32 } from './seeded-random.js';

/** Input and output width of a dense layer the adapter targets. */
export interface ModuleShape {
  in: number;
  out: number;
}

export interface NamedTensor {
  shape: number[];
  values: Float32Array;
}

const PREFIX = 'base_model.model.';

/**
 * Version 0 of an adapter, identical on every device and on the worker:
 * - `lora` / `ffa-lora`: A [r, in] ~ U(−1/√in, 1/√in) (PEFT's kaiming_uniform_(a=√5) bound),
 *   drawn from `SeededRandom(seed ^ fnv1a(module))`; B [out, r] = 0, so the adapted model starts
 *   equal to the base.
 * - `bias`: an additive offset to each target module's bias, [out] = 0.
 * - `full`: an additive offset to the kernel in PEFT/PyTorch layout [out, in] = 0 (the tfjs
 *   kernel [in, out] becomes W + offsetᵀ) and a bias offset [out] = 0. `r` and `alpha` are ignored.
 * In every mode version 0 leaves the adapted model equal to the base.
 */
export function initialAdapterTensors(
  spec: AdapterSpec,
  moduleShapes: Record<string, ModuleShape>,
): Map<string, NamedTensor> {
  const tensors = new Map<string, NamedTensor>();
  for (const module of spec.targetModules) {
    const shape = moduleShapes[module];
    if (!shape) throw new RangeError(`no shape known for target module "${module}"`);
    if (spec.mode === 'full') {
      tensors.set(`${PREFIX}${module}.weight`, {
        shape: [shape.out, shape.in],
        values: new Float32Array(shape.out * shape.in),
      });
    }
    if (spec.mode === 'bias' || spec.mode === 'full') {
      tensors.set(`${PREFIX}${module}.bias`, { shape: [shape.out], values: new Float32Array(shape.out) });
      continue;
    }
    tensors.set(`${PREFIX}${module}.lora_A.weight`, {
      shape: [spec.r, shape.in],
      values: initialLoraA(spec, module, shape.in),
    });
    tensors.set(`${PREFIX}${module}.lora_B.weight`, {
      shape: [shape.out, spec.r],
      values: new Float32Array(shape.out * spec.r),
    });
  }
  return tensors;
}

/** The seeded A [r, in] (row-major) of one module. */
export function initialLoraA(spec: AdapterSpec, module: string, inFeatures: number): Float32Array {
  const random = new SeededRandom((spec.seed ^ fnv1a32(module)) >>> 0);
  const bound = 1 / Math.sqrt(inFeatures);
  const values = new Float32Array(spec.r * inFeatures);
  for (let i = 0; i < values.length; i++) values[i] = (2 * random.nextFloat() - 1) * bound;
  return values;
}
