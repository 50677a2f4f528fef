import {
  FlotillaError,
  decodeSafetensors,
  parseAdapterTensorName,
  readFloat32,
  type AdapterMode,
  type AdapterTensorKind,
  type RoundPlan,
  type TaskDefinition,
} from '@flotilla/protocol';

/** Relative tolerance on the clip bound: float32 clipping on the device may overshoot by rounding. */
export const NORM_TOLERANCE = 1e-6;

/** Metadata key holding the per-tensor dequantisation scale of an I8 tensor (decimal string). */
export function int8ScaleKey(tensorName: string): string {
  return `scale:${tensorName}`;
}

export interface ValidatedDelta {
  /** Global L2 norm over every tensor, recomputed here (float64 accumulation). */
  norm: number;
  tensorCount: number;
}

/** Tensor kinds each adapter mode may send, and those it must send for every target module. */
const MODE_KINDS: Record<AdapterMode, { allowed: AdapterTensorKind[]; required: AdapterTensorKind[] }> = {
  lora: { allowed: ['lora_A', 'lora_B'], required: ['lora_A', 'lora_B'] },
  // A is frozen: its (zero) delta may be sent or left out.
  'ffa-lora': { allowed: ['lora_A', 'lora_B'], required: ['lora_B'] },
  bias: { allowed: ['bias'], required: ['bias'] },
  full: { allowed: ['weight', 'bias'], required: ['weight', 'bias'] },
};

/** `sum` + Σ (scale · v)² in float64 (added in order), in a loop small enough to be optimised on its own. */
function addScaledSquares(start: number, values: Float32Array, scale: number): number {
  let sum = start;
  for (let i = 0; i < values.length; i++) {
    const x = (values[i] as number) * scale;
    sum += x * x;
  }
  return sum;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Checks a delta blob (safetensors) against the round's adapter: PEFT tensor names, shapes
 * (`lora_A` [r, in], `lora_B` [out, r], bias [out], full mode's kernel offset `weight` [out, in]),
 * only the tensor kinds of the adapter's mode, only allowed modules, finite values and the
 * clip bound. int8 tensors are dequantised with `scale:<name>` before the norm is taken.
 */
export function validateDeltaBlob(bytes: Uint8Array, task: TaskDefinition, plan: RoundPlan): ValidatedDelta {
  const file = decodeSafetensors(bytes, { maxHeaderBytes: 1_000_000 });
  const spec = plan.adapter.spec;
  const allowed = new Set(task.policy.allowedModules);
  const targets = new Set(spec.targetModules);
  const seen = new Set<string>();
  let sumSquares = 0;
  for (const [name, entry] of file.tensors) {
    const parsed = parseAdapterTensorName(name);
    if (!parsed)
      throw new FlotillaError('SHAPE_MISMATCH', `tensor ${name} is not a PEFT adapter tensor name`);
    if (!allowed.has(parsed.module) || !targets.has(parsed.module))
      throw new FlotillaError(
        'MODULE_NOT_ALLOWED',
        `module ${parsed.module} may not be updated in this task`,
      );
    const dims = task.moduleShapes?.[parsed.module];
    if (!dims) throw new FlotillaError('SHAPE_MISMATCH', `no shape registered for module ${parsed.module}`);
    if (!MODE_KINDS[spec.mode].allowed.includes(parsed.kind))
      throw new FlotillaError(
        'SHAPE_MISMATCH',
        `${parsed.kind} tensors are not part of a ${spec.mode} adapter`,
      );
    const expected =
      parsed.kind === 'lora_A'
        ? [spec.r, dims.in]
        : parsed.kind === 'lora_B'
          ? [dims.out, spec.r]
          : parsed.kind === 'weight'
            ? [dims.out, dims.in]
            : [dims.out];
    if (!sameShape(entry.shape, expected))
      throw new FlotillaError(
        'SHAPE_MISMATCH',
        `${name} has shape [${entry.shape.join(', ')}], expected [${expected.join(', ')}]`,
      );
    let scale = 1;
    if (entry.dtype === 'I8') {
      const raw = file.metadata[int8ScaleKey(name)];
      scale = raw === undefined ? Number.NaN : Number(raw);
      if (!Number.isFinite(scale))
        throw new FlotillaError('CORRUPT_FILE', `int8 tensor ${name} has no finite ${int8ScaleKey(name)}`);
    } else if (entry.dtype === 'I32') {
      throw new FlotillaError('CORRUPT_FILE', `${name}: I32 is not a delta dtype`);
    }
    const values = readFloat32(entry);
    // One pass that only adds; the values are looked at one by one only when the sum stopped being
    // finite (a NaN or ±Inf, or an int8 scale so large that a square overflows: then the norm says so).
    sumSquares = addScaledSquares(sumSquares, values, scale);
    if (!Number.isFinite(sumSquares) && values.some((v) => !Number.isFinite(v * scale)))
      throw new FlotillaError('NON_FINITE', `${name} holds NaN or Infinity`);
    // FFA-LoRA's A is frozen: what a device may send for it is its zero delta, nothing else.
    if (spec.mode === 'ffa-lora' && parsed.kind === 'lora_A' && values.some((v) => v !== 0))
      throw new FlotillaError(
        'BAD_REQUEST',
        `${name} is frozen in an ffa-lora adapter: send its zero delta or leave it out`,
      );
    seen.add(`${parsed.module}/${parsed.kind}`);
  }
  for (const module of spec.targetModules) {
    for (const kind of MODE_KINDS[spec.mode].required)
      if (!seen.has(`${module}/${kind}`))
        throw new FlotillaError('SHAPE_MISMATCH', `missing ${kind} tensor of module ${module}`);
  }
  const norm = Math.sqrt(sumSquares);
  if (norm > plan.clipNorm * (1 + NORM_TOLERANCE))
    throw new FlotillaError('NORM_EXCEEDED', `delta L2 norm ${norm} exceeds the clip bound ${plan.clipNorm}`);
  return { norm, tensorCount: file.tensors.size };
}
