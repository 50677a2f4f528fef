import { z } from 'zod';
import {
  DeviceIdSchema,
  DigestSchema,
  EpochMsSchema,
  NonceSchema,
  ProtocolVersionSchema,
  RoundIdSchema,
  SignatureSchema,
  TaskIdSchema,
  WireErrorSchema,
} from './primitives.js';
import { LogLeafSchema } from './log-proof.js';

/** What a device reports about the work behind an update. */
export const TelemetrySchema = z.object({
  trainingMs: z.number().nonnegative(),
  steps: z.number().int().nonnegative(),
  examples: z.number().int().nonnegative(),
  stepsPerSecond: z.number().nonnegative(),
  bytesUp: z.number().int().nonnegative(),
  bytesDown: z.number().int().nonnegative(),
  /** CPU-seconds times the configured power figure, in joules. */
  estimatedEnergyJ: z.number().nonnegative(),
  /** tfjs backend that trained: 'tensorflow', 'wasm', 'cpu', 'webgl'. */
  backend: z.string().max(32),
  holdout: z
    .object({
      lossBefore: z.number(),
      lossAfter: z.number(),
      accuracyBefore: z.number(),
      accuracyAfter: z.number(),
    })
    .optional(),
});
export type Telemetry = z.infer<typeof TelemetrySchema>;

/**
 * The signed part of an update: everything the coordinator acts on. The signature covers the
 * `flotilla/v1/update` domain digest of the canonical JSON of this object.
 */
export const UpdateMetadataSchema = z.object({
  protocolVersion: ProtocolVersionSchema,
  taskId: TaskIdSchema,
  roundId: RoundIdSchema,
  nonce: NonceSchema,
  deviceId: DeviceIdSchema,
  /** SHA-256 of the safetensors delta already uploaded with `PUT /blobs/:sha256`. */
  blobDigest: DigestSchema,
  blobBytes: z.number().int().positive(),
  /** Adapter version the delta was trained from. */
  adapterVersion: z.number().int().nonnegative(),
  /** Training examples behind the delta: the FedAvg weight. */
  numExamples: z.number().int().positive(),
  /** The device's own measure of the delta's global L2 norm after clipping. */
  reportedNorm: z.number().nonnegative(),
  /** Whether clipping scaled the delta down. */
  clipped: z.boolean(),
  quantization: z.enum(['none', 'int8']),
  telemetry: TelemetrySchema,
  createdAt: EpochMsSchema,
});
export type UpdateMetadata = z.infer<typeof UpdateMetadataSchema>;

/**
 * update:submit — sent by a selected device after uploading its blob.
 * Ack: `UpdateReceipt` once the acceptance is durable, or an error whose code is the refusal reason.
 */
export const UpdateSubmissionSchema = z.object({
  metadata: UpdateMetadataSchema,
  signature: SignatureSchema,
});
export type UpdateSubmission = z.infer<typeof UpdateSubmissionSchema>;

export const UpdateReceiptSchema = z.object({
  roundId: RoundIdSchema,
  blobDigest: DigestSchema,
  /** Global L2 norm the coordinator recomputed from the blob. */
  norm: z.number().nonnegative(),
  acceptedAt: EpochMsSchema,
  /**
   * The `update.accepted` record and its leaf hash in the round log: what the device asks an
   * inclusion proof for (`log:proof`). Null when the coordinator keeps no round log, or could
   * not append to it (the acceptance stands; the record is then logged when the round ends).
   */
  logLeaf: LogLeafSchema.nullable().default(null),
});
export type UpdateReceipt = z.infer<typeof UpdateReceiptSchema>;

/**
 * The `error` of a refused `update:submit` ack: the reason code and message, and where the round
 * log holds the refusal, so the device can prove it was refused for that reason.
 */
export const UpdateRefusalSchema = WireErrorSchema.extend({
  /**
   * The `update.refused` record of this (round, device, reason) and its leaf hash: for a repeated
   * refusal, the record of the first one (repeats are only counted). Null when the refusal is not
   * logged (no round log, a round still in selection, a failed append, or a repeat answered while
   * the first one's append was still under way).
   */
  logLeaf: LogLeafSchema.nullable().default(null),
});
export type UpdateRefusal = z.infer<typeof UpdateRefusalSchema>;

/**
 * update:skip — sent by a selected device that will not send an update (its validation gate
 * refused it, or its budget ran out). Ack: `{ recorded: true }`.
 */
export const UpdateSkipSchema = z.object({
  roundId: RoundIdSchema,
  reason: z.enum(['validation-gate', 'budget-exhausted', 'no-data', 'error']),
  detail: z.string().max(500),
  telemetry: z.lazy(() => TelemetrySchema).optional(),
});
export type UpdateSkip = z.infer<typeof UpdateSkipSchema>;

/** The ack data of `update:skip`: the skip is stored and counted. */
export const UpdateSkipResultSchema = z.object({ recorded: z.literal(true) });
export type UpdateSkipResult = z.infer<typeof UpdateSkipResultSchema>;
