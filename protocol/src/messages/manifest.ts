import { z } from 'zod';
import { AdapterSpecSchema } from './adapter-spec.js';
import {
  DigestSchema,
  EpochMsSchema,
  PublicKeySchema,
  RoundIdSchema,
  SignatureSchema,
  TaskIdSchema,
} from './primitives.js';

/** Digests of one tensor set in the precisions devices may ask for. */
export const ArtifactSetSchema = z.object({
  f32: z.object({ digest: DigestSchema, bytes: z.number().int().positive() }),
  f16: z.object({ digest: DigestSchema, bytes: z.number().int().positive() }),
  int8: z.object({ digest: DigestSchema, bytes: z.number().int().positive() }).optional(),
});
export type ArtifactSet = z.infer<typeof ArtifactSetSchema>;

/**
 * An adapter version. `adapter` is the full adapter; `delta` is adapter(version) minus
 * adapter(parentVersion), so a device can catch up along the chain or jump to the full adapter.
 */
export const AdapterManifestSchema = z.object({
  taskId: TaskIdSchema,
  version: z.number().int().positive(),
  parentVersion: z.number().int().nonnegative(),
  /** Round that produced it; null for a rollback. */
  roundId: RoundIdSchema.nullable(),
  baseModelDigest: DigestSchema,
  spec: AdapterSpecSchema,
  adapter: ArtifactSetSchema,
  delta: ArtifactSetSchema.nullable(),
  /** Digest of the adapter_config.json (PEFT) for this adapter. */
  adapterConfigDigest: DigestSchema,
  /** Aggregation strategy and LoRA rule that produced it. */
  aggregation: z.object({
    strategy: z.string(),
    loraRule: z.string(),
    participants: z.number().int().nonnegative(),
  }),
  metrics: z.record(z.string(), z.number()),
  audit: z.object({ decision: z.enum(['promote', 'reject', 'rollback']), reasons: z.array(z.string()) }),
  /** SHA-256 of the canonical JSON of the task policy in force. */
  policyDigest: DigestSchema,
  privacy: z.object({ epsilon: z.number().nonnegative(), delta: z.number() }).nullable(),
  /** Expected device cost of applying it: bytes to fetch for full and delta. */
  expectedCost: z.object({
    fullBytes: z.number().int().nonnegative(),
    deltaBytes: z.number().int().nonnegative(),
  }),
  /** For a rollback: the version whose content this re-promotes. */
  rollbackOf: z.number().int().positive().nullable(),
  createdAt: EpochMsSchema,
});
export type AdapterManifest = z.infer<typeof AdapterManifestSchema>;

export const SignedManifestSchema = z.object({
  manifest: AdapterManifestSchema,
  coordinatorKey: PublicKeySchema,
  signature: SignatureSchema,
});
export type SignedManifest = z.infer<typeof SignedManifestSchema>;

/**
 * adapter:promoted — broadcast by the server after the worker promotes (or rolls back to) a
 * version. Devices fetch `GET /api/tasks/:taskId/adapters/:version/manifest` and verify it.
 */
export const AdapterPromotedSchema = z.object({
  taskId: TaskIdSchema,
  version: z.number().int().positive(),
  manifestDigest: DigestSchema,
});
export type AdapterPromoted = z.infer<typeof AdapterPromotedSchema>;
