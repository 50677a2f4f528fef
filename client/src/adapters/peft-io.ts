import type { FlotillaAdapterConfig } from '@flotilla/protocol';
import {
  FlotillaAdapterConfigSchema,
  FlotillaError,
  adapterConfigFromSpec,
  decodeFloat32Tensors,
  encodeFloat32Tensors,
} from '@flotilla/protocol';
import type { AdaptedModel } from './adapted-model.js';
import type { NamedTensorMap } from './adapter-tensors.js';

/** An adapter as PEFT ships it: `adapter_model.safetensors` bytes plus `adapter_config.json`. */
export interface ExportedAdapter {
  safetensors: Uint8Array;
  config: FlotillaAdapterConfig;
}

/**
 * Writes every adapter tensor (F32, PEFT names and layouts: lora_A [r, in], lora_B [out, r];
 * bias mode: the additive bias offset [out]) and the adapter_config.json for `baseModelDigest`.
 */
export function exportAdapter(model: AdaptedModel, options: { baseModelDigest: string }): ExportedAdapter {
  const config = adapterConfigFromSpec(model.spec, options.baseModelDigest);
  const safetensors = encodeFloat32Tensors(model.adapterTensors(), { format: 'pt' });
  return { safetensors, config };
}

/**
 * Reads an exported adapter into `model`, after checking that the config describes the same
 * adapter (mode, rank, alpha, seed, modules) as the model's spec, else BAD_REQUEST; tensor
 * names and shapes are checked by `loadAdapterTensors` (SHAPE_MISMATCH). Returns the tensors.
 */
export function importAdapter(model: AdaptedModel, safetensors: Uint8Array, config: unknown): NamedTensorMap {
  const parsed = FlotillaAdapterConfigSchema.safeParse(config);
  if (!parsed.success)
    throw new FlotillaError('CORRUPT_FILE', `adapter_config.json invalid: ${parsed.error.message}`);
  const { spec } = model;
  const c = parsed.data;
  const modules = Array.isArray(c.target_modules) ? c.target_modules : [c.target_modules];
  const sameModules =
    modules.length === spec.targetModules.length && modules.every((m, i) => m === spec.targetModules[i]);
  if (
    c.flotilla.mode !== spec.mode ||
    c.r !== spec.r ||
    c.lora_alpha !== spec.alpha ||
    c.flotilla.seed !== spec.seed ||
    !sameModules
  ) {
    throw new FlotillaError(
      'BAD_REQUEST',
      'adapter_config.json describes a different adapter than the model spec',
    );
  }
  const { tensors } = decodeFloat32Tensors(safetensors);
  model.loadAdapterTensors(tensors);
  return tensors;
}
