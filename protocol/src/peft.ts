// PEFT conventions (https://github.com/huggingface/peft), so that Flotilla adapters are laid out
// like Hugging Face LoRA adapters: tensor names `base_model.model.<module>.lora_A.weight`, `lora_A`
// of shape [r, in] and `lora_B` of shape [out, r], and an `adapter_config.json` beside them.
// tfjs Dense kernels are [in, out], so the adapter's kernel update is ΔW_tfjs = (B·A)ᵀ · alpha / r.
import { z } from 'zod';
import { FlotillaError } from './errors.js';
import { AdapterModeSchema, type AdapterSpec } from './messages/adapter-spec.js';
import { DigestSchema } from './messages/primitives.js';

export const PEFT_PREFIX = 'base_model.model.';

export type AdapterTensorKind = 'lora_A' | 'lora_B' | 'bias';

function checkModule(module: string): void {
  if (module.length === 0) throw new FlotillaError('BAD_REQUEST', 'adapter module name must not be empty');
}

/** PEFT names of the LoRA factors of `module`: A is [r, in], B is [out, r]. */
export function loraTensorNames(module: string): { a: string; b: string } {
  checkModule(module);
  return { a: `${PEFT_PREFIX}${module}.lora_A.weight`, b: `${PEFT_PREFIX}${module}.lora_B.weight` };
}

/** PEFT name of the bias of `module` (trained in `bias` mode; shape [out]). */
export function biasTensorName(module: string): string {
  checkModule(module);
  return `${PEFT_PREFIX}${module}.bias`;
}

// The suffix is anchored at the end and the module is greedy, so modules may contain dots.
const ADAPTER_TENSOR_NAME = /^base_model\.model\.(.+)\.(lora_A\.weight|lora_B\.weight|bias)$/s;

/** Splits a PEFT adapter tensor name into module and kind; null for any other name. */
export function parseAdapterTensorName(name: string): { module: string; kind: AdapterTensorKind } | null {
  const match = ADAPTER_TENSOR_NAME.exec(name);
  const module = match?.[1];
  const suffix = match?.[2];
  if (module === undefined || suffix === undefined) return null;
  const kind: AdapterTensorKind =
    suffix === 'lora_A.weight' ? 'lora_A' : suffix === 'lora_B.weight' ? 'lora_B' : 'bias';
  return { module, kind };
}

/** Flotilla's own section of adapter_config.json; PEFT ignores unknown keys. */
export const FlotillaAdapterFieldsSchema = z.object({
  mode: AdapterModeSchema,
  /** Seed of A's initialisation (the frozen A of ffa-lora), shared by the fleet. */
  seed: z.number().int().nonnegative(),
  /** SHA-256 of the base model blob the adapter applies to. */
  baseModelDigest: DigestSchema,
});
export type FlotillaAdapterFields = z.infer<typeof FlotillaAdapterFieldsSchema>;

/**
 * PEFT `adapter_config.json` of a LoRA adapter. Keys PEFT writes that Flotilla does not use
 * (`revision`, `modules_to_save`, `layers_to_transform`, …) are kept as they are, so real PEFT
 * files parse and round-trip; `flotilla` is optional here because PEFT files do not have it.
 */
export const AdapterConfigSchema = z.looseObject({
  peft_type: z.literal('LORA'),
  /** PEFT task type (`CAUSAL_LM`, `SEQ_CLS`, …); null for a plain tfjs model. */
  task_type: z.string().nullable().default(null),
  /** LoRA rank. */
  r: z.number().int().min(1),
  /** LoRA alpha: the update is scaled by lora_alpha / r. */
  lora_alpha: z.number().positive(),
  lora_dropout: z.number().min(0).lt(1).default(0),
  /** Module names, or (as PEFT allows) one regular expression over module names. */
  target_modules: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]),
  /** Which biases are trained: PEFT's 'none', 'all' or 'lora_only'. */
  bias: z.enum(['none', 'all', 'lora_only']).default('none'),
  /** True when the base stores weights as [in, out] (GPT-2 Conv1D); Flotilla's LoRA tensors do not. */
  fan_in_fan_out: z.boolean().default(false),
  /** PEFT's initialisation switch: true, false or a named scheme ('gaussian', 'pissa', …). */
  init_lora_weights: z.union([z.boolean(), z.string()]).default(true),
  inference_mode: z.boolean().default(true),
  base_model_name_or_path: z.string().nullable().default(null),
  flotilla: FlotillaAdapterFieldsSchema.optional(),
});
export type AdapterConfig = z.infer<typeof AdapterConfigSchema>;

/** An adapter config Flotilla wrote: the `flotilla` section is present. */
export const FlotillaAdapterConfigSchema = AdapterConfigSchema.extend({
  flotilla: FlotillaAdapterFieldsSchema,
});
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
 * `baseModelDigest`. `bias` mode trains every bias (PEFT's bias 'all'); LoRA modes train none.
 */
export function adapterConfigFromSpec(spec: AdapterSpec, baseModelDigest: string): FlotillaAdapterConfig {
  if (!DigestSchema.safeParse(baseModelDigest).success) {
    throw new FlotillaError('BAD_REQUEST', 'baseModelDigest must be a lowercase hex SHA-256');
  }
  return FlotillaAdapterConfigSchema.parse({
    peft_type: 'LORA',
    task_type: null,
    r: spec.r,
    lora_alpha: spec.alpha,
    lora_dropout: 0,
    target_modules: [...spec.targetModules],
    bias: spec.mode === 'bias' ? 'all' : 'none',
    fan_in_fan_out: false,
    init_lora_weights: true,
    inference_mode: true,
    base_model_name_or_path: `sha256:${baseModelDigest}`,
    flotilla: { mode: spec.mode, seed: spec.seed, baseModelDigest },
  });
}
