// PEFT conventions (https://github.com/huggingface/peft), so that Flotilla adapters are laid out
// like Hugging Face LoRA adapters: tensor names `base_model.model.<module>.lora_A.weight`, `lora_A`
// of shape [r, in] and `lora_B` of shape [out, r], and an `adapter_config.json` beside them.
// tfjs Dense kernels are [in, out], so the adapter's kernel update is ΔW_tfjs = (B·A)ᵀ · alpha / r.
// Flotilla's `bias` and `full` modes are not PEFT LoRA: their `<module>.bias` and `<module>.weight`
// tensors are additive offsets to the frozen base (bias [out]; kernel [out, in], PyTorch layout, so
// the adapted tfjs kernel is W + offsetᵀ), never absolute parameters.
import { z } from 'zod';
import { FlotillaError } from './errors.js';
import { AdapterModeSchema, type AdapterSpec } from './messages/adapter-spec.js';
import { DigestSchema } from './messages/primitives.js';

export const PEFT_PREFIX = 'base_model.model.';

export type AdapterTensorKind = 'lora_A' | 'lora_B' | 'bias' | 'weight';

function checkModule(module: string): void {
  if (module.length === 0) throw new FlotillaError('BAD_REQUEST', 'adapter module name must not be empty');
}

/** PEFT names of the LoRA factors of `module`: A is [r, in], B is [out, r]. */
export function loraTensorNames(module: string): { a: string; b: string } {
  checkModule(module);
  return { a: `${PEFT_PREFIX}${module}.lora_A.weight`, b: `${PEFT_PREFIX}${module}.lora_B.weight` };
}

/** Name of the additive bias offset of `module` (trained in `bias` and `full` modes; shape [out]). */
export function biasTensorName(module: string): string {
  checkModule(module);
  return `${PEFT_PREFIX}${module}.bias`;
}

// `<m>.lora_A` + `.weight` would read back as the lora_A factor of `<m>`; such modules (and a bare
// `lora_A`) have no full-mode name, and a `.weight` name ending that way is not a full-mode tensor.
const LORA_FACTOR_MODULE = /(?:^|\.)lora_[AB]$/s;

/**
 * Name of the additive kernel offset of `module` (trained in `full` mode), shape [out, in]
 * (PyTorch layout; the adapted tfjs kernel [in, out] is W + offsetᵀ).
 */
export function weightTensorName(module: string): string {
  checkModule(module);
  if (LORA_FACTOR_MODULE.test(module))
    throw new FlotillaError('BAD_REQUEST', `module name '${module}' would read back as a LoRA factor`);
  return `${PEFT_PREFIX}${module}.weight`;
}

// The suffix is anchored at the end and the module is lazy (the shortest module that leaves a
// whole suffix), so modules may contain dots and `x.lora_A.weight` is x's lora_A, not a weight.
const ADAPTER_TENSOR_NAME = /^base_model\.model\.(.+?)\.(lora_A\.weight|lora_B\.weight|bias|weight)$/s;

/** Splits a PEFT adapter tensor name into module and kind; null for any other name. */
export function parseAdapterTensorName(name: string): { module: string; kind: AdapterTensorKind } | null {
  const match = ADAPTER_TENSOR_NAME.exec(name);
  const module = match?.[1];
  const suffix = match?.[2];
  if (module === undefined || suffix === undefined) return null;
  if (suffix === 'weight' && LORA_FACTOR_MODULE.test(module)) return null;
  const kind: AdapterTensorKind =
    suffix === 'lora_A.weight'
      ? 'lora_A'
      : suffix === 'lora_B.weight'
        ? 'lora_B'
        : suffix === 'bias'
          ? 'bias'
          : 'weight';
  return { module, kind };
}

/**
 * `peft_type` of a `full`-mode adapter. Its `.weight`/`.bias` tensors are offsets to add to the
 * base, which a PEFT loader must not read as a LoRA adapter (it would load them as absolute
 * parameters); PEFT has no such type, so it refuses the file instead of misreading it.
 */
export const FLOTILLA_FULL_PEFT_TYPE = 'FLOTILLA_FULL';

/** Flotilla's own section of adapter_config.json; PEFT ignores unknown keys. */
export const FlotillaAdapterFieldsSchema = z.object({
  mode: AdapterModeSchema,
  /** Seed of A's initialisation (the frozen A of ffa-lora), shared by the fleet. */
  seed: z.number().int().nonnegative(),
  /** SHA-256 of the base model blob the adapter applies to. */
  baseModelDigest: DigestSchema,
  /**
   * Tensor kinds stored as additive offsets to the frozen base, not as absolute parameters:
   * `['bias']` in bias mode (adapted bias = b + offset), `['weight', 'bias']` in full mode
   * (adapted tfjs kernel = W + offsetᵀ, offset [out, in]); empty for LoRA modes. Optional: older
   * files lack it, and the mode implies it.
   */
  offsets: z.array(z.enum(['weight', 'bias'])).optional(),
});
export type FlotillaAdapterFields = z.infer<typeof FlotillaAdapterFieldsSchema>;

const adapterConfigShape = {
  /** 'LORA', or {@link FLOTILLA_FULL_PEFT_TYPE} for a full-mode adapter (not a PEFT LoRA file). */
  peft_type: z.enum(['LORA', FLOTILLA_FULL_PEFT_TYPE]),
  /** PEFT task type (`CAUSAL_LM`, `SEQ_CLS`, …); null for a plain tfjs model. */
  task_type: z.string().nullable().default(null),
  /** LoRA rank (written but ignored in bias and full modes). */
  r: z.number().int().min(1),
  /** LoRA alpha: the update is scaled by lora_alpha / r (ignored in bias and full modes). */
  lora_alpha: z.number().positive(),
  lora_dropout: z.number().min(0).lt(1).default(0),
  /** Module names, or (as PEFT allows) one regular expression over module names. */
  target_modules: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]),
  /**
   * Which absolute biases PEFT trains and saves: 'none', 'all' or 'lora_only'. Flotilla always
   * writes 'none': its bias tensors are offsets (see `flotilla.offsets`), not PEFT biases.
   */
  bias: z.enum(['none', 'all', 'lora_only']).default('none'),
  /** True when the base stores weights as [in, out] (GPT-2 Conv1D); Flotilla's LoRA tensors do not. */
  fan_in_fan_out: z.boolean().default(false),
  /** PEFT's initialisation switch: true, false or a named scheme ('gaussian', 'pissa', …). */
  init_lora_weights: z.union([z.boolean(), z.string()]).default(true),
  inference_mode: z.boolean().default(true),
  base_model_name_or_path: z.string().nullable().default(null),
};

/** peft_type FLOTILLA_FULL goes with flotilla.mode 'full' and with nothing else. */
function checkFullType(
  config: { peft_type: string; flotilla?: { mode: string } | undefined },
  ctx: z.RefinementCtx,
): void {
  const fullType = config.peft_type === FLOTILLA_FULL_PEFT_TYPE;
  const fullMode = config.flotilla?.mode === 'full';
  if (fullType !== fullMode) {
    ctx.addIssue({
      code: 'custom',
      path: ['peft_type'],
      message: `peft_type ${FLOTILLA_FULL_PEFT_TYPE} is used exactly when flotilla.mode is 'full'`,
    });
  }
}

/**
 * PEFT `adapter_config.json` of a LoRA adapter (or of a Flotilla full-mode adapter). Keys PEFT
 * writes that Flotilla does not use (`revision`, `modules_to_save`, `layers_to_transform`, …) are
 * kept as they are, so real PEFT files parse and round-trip; `flotilla` is optional here because
 * PEFT files do not have it.
 */
export const AdapterConfigSchema = z
  .looseObject({ ...adapterConfigShape, flotilla: FlotillaAdapterFieldsSchema.optional() })
  .superRefine(checkFullType);
export type AdapterConfig = z.infer<typeof AdapterConfigSchema>;

/** An adapter config Flotilla wrote: the `flotilla` section is present. */
export const FlotillaAdapterConfigSchema = z
  .looseObject({ ...adapterConfigShape, flotilla: FlotillaAdapterFieldsSchema })
  .superRefine(checkFullType);
export type FlotillaAdapterConfig = z.infer<typeof FlotillaAdapterConfigSchema>;

/** Parses adapter_config.json text; throws `CORRUPT_FILE` with the first problem found. */
export function parseAdapterConfig(text: string): AdapterConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new FlotillaError('CORRUPT_FILE', 'adapter_config.json is not valid JSON');
  }
  const parsed = AdapterConfigSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') ?? '';
    throw new FlotillaError(
      'CORRUPT_FILE',
      `adapter_config.json is invalid at ${where || '(root)'}: ${issue?.message ?? ''}`,
    );
  }
  return parsed.data;
}

/**
 * The adapter_config.json of an adapter trained from `spec` on the base model with SHA-256
 * `baseModelDigest`. PEFT's `bias` is always 'none': bias-mode (and full-mode) bias tensors are
 * additive offsets, listed in `flotilla.offsets`, which PEFT would misread as absolute biases
 * under 'all'. A full-mode adapter gets peft_type {@link FLOTILLA_FULL_PEFT_TYPE}: it is not a
 * PEFT LoRA file (its r and lora_alpha are the spec's, unused).
 */
export function adapterConfigFromSpec(spec: AdapterSpec, baseModelDigest: string): FlotillaAdapterConfig {
  if (!DigestSchema.safeParse(baseModelDigest).success) {
    throw new FlotillaError('BAD_REQUEST', 'baseModelDigest must be a lowercase hex SHA-256');
  }
  const offsets: Array<'weight' | 'bias'> =
    spec.mode === 'full' ? ['weight', 'bias'] : spec.mode === 'bias' ? ['bias'] : [];
  return FlotillaAdapterConfigSchema.parse({
    peft_type: spec.mode === 'full' ? FLOTILLA_FULL_PEFT_TYPE : 'LORA',
    task_type: null,
    r: spec.r,
    lora_alpha: spec.alpha,
    lora_dropout: 0,
    target_modules: [...spec.targetModules],
    bias: 'none',
    fan_in_fan_out: false,
    init_lora_weights: true,
    inference_mode: true,
    base_model_name_or_path: `sha256:${baseModelDigest}`,
    flotilla: { mode: spec.mode, seed: spec.seed, baseModelDigest, offsets },
  });
}
