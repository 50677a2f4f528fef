import { z } from 'zod';

/**
 * How a device adapts the frozen base: `lora` trains A and B, `ffa-lora` freezes A (drawn from
 * `seed`) and trains only B so that averaging B is exact, `bias` trains only additive bias
 * offsets, `full` trains additive offsets to the whole kernel and bias of each target module
 * (the full fine-tuning baseline adapters are compared with; `r` and `alpha` are ignored).
 */
export const AdapterModeSchema = z.enum(['lora', 'ffa-lora', 'bias', 'full']);
export type AdapterMode = z.infer<typeof AdapterModeSchema>;

export const AdapterSpecSchema = z.object({
  mode: AdapterModeSchema,
  /** Names of the tfjs dense layers to adapt. */
  targetModules: z.array(z.string().min(1).max(128)).min(1).max(256),
  /**
   * LoRA rank (ignored by `bias` and `full`, which have no low-rank factors). Default 8 (PEFT's
   * `LoraConfig`).
   */
  r: z.number().int().min(1).max(1024).default(8),
  /**
   * LoRA alpha; the update is scaled by alpha / r (ignored by `bias` and `full`). Default 8
   * (PEFT's `LoraConfig`).
   */
  alpha: z.number().positive().default(8),
  /** Seed for initialising A (and for the frozen A of ffa-lora); shared by the whole fleet. Default 0. */
  seed: z.number().int().nonnegative().default(0),
});
export type AdapterSpec = z.infer<typeof AdapterSpecSchema>;
