// A hierarchical round computes its candidate once, between its two passes of shard jobs, and
// reads it back when the job resumes (another process may resume it). Recomputing instead would
// redraw the DP noise from the CSPRNG and change the candidate between the audit and promotion.
import { z } from 'zod';
import {
  DpReleaseSchema,
  FlotillaError,
  ServerOptimizerNameSchema,
  decodeFloat32Tensors,
  encodeFloat32Tensors,
} from '@flotilla/protocol';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import { RdpAccountant } from '../privacy/accountant.js';
import { encodeServerOptimizerState, type ServerOptimizerState } from '../strategies/index.js';
import type { ComputeRoundResult } from './compute-round.js';

const META = 'flotilla.candidate';
const ADAPTER = 'adapter/';
const STEP = 'step/';
const OPTIMIZER = 'optimizer/';

const NullableNumber = z.number().nullable();
/** Everything of a ComputeRoundResult but its tensors, which travel as safetensors. */
const CandidateMetaSchema = z.object({
  lora: z.object({
    rule: z.enum(['ffa', 'fedit', 'product']),
    feditRelativeError: NullableNumber,
    truncationRelativeError: NullableNumber,
    hasStep: z.boolean(),
  }),
  strategy: z.string(),
  selected: z.array(z.number().int().nonnegative()),
  details: z.record(z.string(), z.union([z.number(), z.string(), z.array(z.number())])),
  optimizer: z
    .object({
      strategy: ServerOptimizerNameSchema,
      step: z.number().int().nonnegative(),
    })
    .nullable(),
  privacy: z
    .object({
      noiseMultiplier: z.number(),
      noiseStd: z.number(),
      clipNorm: z.number(),
      nextClipNorm: z.number(),
      epsilon: z.number(),
      delta: z.number(),
      releases: z.array(DpReleaseSchema),
      accountant: z.unknown(),
    })
    .nullable(),
});

function prefixed(
  map: TensorMap,
  prefix: string,
): Array<[string, { shape: number[]; values: Float32Array }]> {
  return [...map].map(([name, t]) => [`${prefix}${name}`, t]);
}

function unprefixed(map: TensorMap, prefix: string): TensorMap {
  return new Map(
    [...map].filter(([name]) => name.startsWith(prefix)).map(([name, t]) => [name.slice(prefix.length), t]),
  );
}

/** One F32 safetensors file: the tensors under `adapter/`, `step/`, `optimizer/`, the rest as JSON. */
export function encodeCandidate(result: ComputeRoundResult): Uint8Array {
  const { adapter, lora, optimizerState, privacy } = result;
  const none: TensorMap = new Map();
  const tensors = new Map([
    ...prefixed(adapter, ADAPTER),
    ...prefixed(lora.step ?? none, STEP),
    ...prefixed(optimizerState ? encodeServerOptimizerState(optimizerState).tensors : none, OPTIMIZER),
  ]);
  const meta: z.infer<typeof CandidateMetaSchema> = {
    lora: {
      rule: lora.rule,
      feditRelativeError: lora.feditRelativeError,
      truncationRelativeError: lora.truncationRelativeError,
      hasStep: lora.step !== null,
    },
    strategy: result.strategy,
    selected: result.selected,
    details: result.details,
    optimizer: optimizerState ? { strategy: optimizerState.strategy, step: optimizerState.step } : null,
    privacy,
  };
  return encodeFloat32Tensors(tensors, { [META]: JSON.stringify(meta) }, 'F32');
}

export function decodeCandidate(bytes: Uint8Array): ComputeRoundResult {
  const { tensors, metadata } = decodeFloat32Tensors(bytes);
  const parsed = CandidateMetaSchema.safeParse(JSON.parse(metadata[META] ?? 'null'));
  if (!parsed.success) throw new FlotillaError('CORRUPT_FILE', `round candidate: ${parsed.error.message}`);
  const meta = parsed.data;
  let optimizerState: ServerOptimizerState | undefined;
  if (meta.optimizer) {
    const buffers: Record<string, Float32Array> = {};
    for (const [name, t] of unprefixed(tensors, OPTIMIZER)) buffers[name] = t.values;
    optimizerState = { ...meta.optimizer, buffers };
  }
  const { hasStep, ...lora } = meta.lora;
  return {
    adapter: unprefixed(tensors, ADAPTER),
    lora: { ...lora, step: hasStep ? unprefixed(tensors, STEP) : null },
    strategy: meta.strategy,
    selected: meta.selected,
    details: meta.details,
    optimizerState,
    privacy: meta.privacy && {
      ...meta.privacy,
      // Validated, and kept in its persisted form (orders may be 'Infinity').
      accountant: RdpAccountant.fromJSON(meta.privacy.accountant).toJSON(),
    },
  };
}
