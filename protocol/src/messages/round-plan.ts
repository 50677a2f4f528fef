import { z } from 'zod';
import { AdapterSpecSchema } from './adapter-spec.js';
import { DigestSchema, EpochMsSchema, NonceSchema, RoundIdSchema, TaskIdSchema } from './primitives.js';

/**
 * Local training hyper-parameters for one round. The learning rate has no default: no value suits
 * every model.
 */
export const TrainingPlanSchema = z.object({
  /** Passes over the local training data per round (within the round's step budget). Default 1. */
  epochs: z.number().int().min(1).max(100).default(1),
  /** Examples per optimizer step. Default 32. */
  batchSize: z.number().int().min(1).max(4096).default(32),
  learningRate: z.number().positive(),
  /** FedProx proximal term μ (0 = plain local SGD, i.e. FedAvg's local step). Default 0. */
  fedProxMu: z.number().nonnegative().default(0),
  /** Optimizer used on the device. Default 'sgd' (FedAvg's local SGD, McMahan et al. 2017). */
  optimizer: z.enum(['sgd', 'adam']).default('sgd'),
});
export type TrainingPlan = z.infer<typeof TrainingPlanSchema>;

/** The most a device may spend on this round. */
export const RoundBudgetSchema = z.object({
  maxSteps: z.number().int().positive(),
  maxSeconds: z.number().positive(),
  /** Upper bound on the upload blob size in bytes. */
  maxUploadBytes: z.number().int().positive(),
});
export type RoundBudget = z.infer<typeof RoundBudgetSchema>;

/**
 * round:plan — sent by the server to each selected device once selection succeeds. The device
 * trains from adapter `adapter.version`, then clips, signs and submits before `deadline`.
 * No reply; the device answers with `update:submit` or `update:skip`.
 */
export const RoundPlanSchema = z.object({
  roundId: RoundIdSchema,
  taskId: TaskIdSchema,
  roundNumber: z.number().int().nonnegative(),
  /** Fresh per round: binds every update signature to this round. */
  nonce: NonceSchema,
  baseModelDigest: DigestSchema,
  adapter: z.object({
    spec: AdapterSpecSchema,
    /** Adapter version training starts from (0 = freshly initialised). */
    version: z.number().int().nonnegative(),
    /** Digest of the F32 adapter file of `version`; null for version 0. */
    digest: DigestSchema.nullable(),
  }),
  training: TrainingPlanSchema,
  budget: RoundBudgetSchema,
  /** Global L2 bound on the delta over all tensors. */
  clipNorm: z.number().positive(),
  /** 'int8' asks for 8-bit quantised deltas (per-tensor scale, stochastic rounding). */
  quantization: z.enum(['none', 'int8']),
  /**
   * Largest holdout loss increase (relative, 0.05 = 5%) an update may cause and still be sent;
   * null: no validation gate this round.
   */
  validationTolerance: z.number().nonnegative().nullable(),
  /** Updates arriving after this time (epoch ms) are refused as ROUND_CLOSED. */
  deadline: EpochMsSchema,
  /**
   * True when the round promises differential privacy: the round log then names this device's
   * update by a commitment and withholds what it says of itself (docs/privacy.md), and the device
   * checks its log record has that form. Absent: false.
   */
  dp: z.boolean().optional(),
});
export type RoundPlan = z.infer<typeof RoundPlanSchema>;

/** round:closed — broadcast when a round leaves REPORTING. */
export const RoundClosedSchema = z.object({
  roundId: RoundIdSchema,
  taskId: TaskIdSchema,
  state: z.enum(['AGGREGATING', 'COMMITTED', 'REJECTED', 'ABANDONED']),
  reason: z.string().max(500).optional(),
});
export type RoundClosed = z.infer<typeof RoundClosedSchema>;
