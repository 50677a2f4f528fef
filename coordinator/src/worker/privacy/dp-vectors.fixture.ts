/**
 * Loads the published DP reference values (`/work/shared/vectors/dp-published.json`, i.e.
 * `../shared/vectors/` from the repository root) for the tests of this folder.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const NumberOrInfSchema = z.union([z.number(), z.literal('inf').transform(() => Infinity)]);

const RdpUnitTestSchema = z.object({
  call: z.string(),
  expected: z.unknown(),
  tol: z.string().optional(),
  ours: z.unknown(),
});

const PublishedSettingSchema = z.object({
  name: z.string(),
  q: z.number(),
  sigma: z.number(),
  T: z.number().int(),
  delta: z.number(),
  eps: z.number(),
  opt_order: z.number(),
  eps_basic_conversion: z.number(),
  eps_int_orders: z.number(),
});

export const DpVectorsSchema = z.object({
  orders: z.array(z.number()),
  rdp_unit_tests: z.array(RdpUnitTestSchema),
  published_settings: z.array(PublishedSettingSchema),
  noise_std: z.array(
    z.object({
      noise_multiplier: z.number(),
      clipping_norm: z.number(),
      num_sampled_clients: z.number(),
      expected_std: z.number(),
    }),
  ),
  adaptive_noise_split: z.array(
    z.object({
      noise_multiplier: z.number(),
      num_sampled_clients: z.number(),
      clipped_count_stddev: z.number().nullable(),
      expected: z.union([z.tuple([z.number(), z.number()]), z.string()]),
    }),
  ),
  adaptive_clip_update: z.array(
    z.object({
      estimate: z.number(),
      target_unclipped_quantile: z.number(),
      learning_rate: z.number(),
      fraction_unclipped: z.number(),
      geometric_expected: z.number(),
    }),
  ),
});
export type DpVectors = z.infer<typeof DpVectorsSchema>;

export const NumberListSchema = z.array(NumberOrInfSchema);

const VECTORS_URL = new URL('../../../../../shared/vectors/dp-published.json', import.meta.url);

export function loadDpVectors(): DpVectors {
  return DpVectorsSchema.parse(JSON.parse(readFileSync(VECTORS_URL, 'utf8')));
}

/** |actual − expected| / |expected| (absolute error when expected is 0; 0 when both are ∞). */
export function relativeError(actual: number, expected: number): number {
  if (actual === expected) return 0;
  if (expected === 0) return Math.abs(actual);
  return Math.abs(actual - expected) / Math.abs(expected);
}
