import { z } from 'zod';
import {
  DigestSchema,
  EpochMsSchema,
  PublicKeySchema,
  RoundIdSchema,
  TaskIdSchema,
} from '../messages/primitives.js';
import { TASK_CONTROL_ACTIONS } from '../messages/task-control.js';

// Round-log events: what happened, as the coordinator or the worker saw it. Each is wrapped in a
// signed, hash-chained `RoundLogRecord` (record.ts). Objects are strict: a field the schema does
// not know is a sign of tampering or of a newer format, and an auditor must not skip over either.

/** Keyed pseudonym of a device: `dev_` + the first 16 bytes of HMAC-SHA-256(secret, deviceId), hex. */
export const DevicePseudonymSchema = z
  .string()
  .regex(/^dev_[0-9a-f]{32}$/, 'expected a device pseudonym dev_<32 hex>');
export type DevicePseudonym = z.infer<typeof DevicePseudonymSchema>;

const Count = z.number().int().nonnegative();
const NonNegative = z.number().nonnegative();
const Positive = z.number().positive();
const Reason = z.string().min(1).max(2000);

/** Differential-privacy parameters of a round: the ε budget of the task and the δ it is reported at. */
export const RoundDpSchema = z.strictObject({
  epsilonBudget: Positive,
  delta: z.number().gt(0).lt(1),
  /** Gaussian noise multiplier z (noise std = z·C/m on the average). */
  noiseMultiplier: NonNegative,
});

/** Round opened (coordinator): the parameters every later check of this round is measured against. */
export const RoundOpenedEventSchema = z.strictObject({
  type: z.literal('round.opened'),
  taskId: TaskIdSchema,
  roundId: RoundIdSchema,
  goalCount: z.number().int().positive(),
  /** Quorum: the round may close only with at least this many accepted updates. */
  minReports: z.number().int().positive(),
  /** L2 clip bound of the round. */
  clipNorm: Positive,
  /** Adapter version the devices train from. */
  parentVersion: Count,
  deadline: EpochMsSchema,
  dp: RoundDpSchema.nullable(),
});

/** Devices selected for the round (coordinator), by pseudonym. */
export const RoundSelectedEventSchema = z.strictObject({
  type: z.literal('round.selected'),
  taskId: TaskIdSchema,
  roundId: RoundIdSchema,
  devices: z.array(DevicePseudonymSchema),
  /** How many checked-in devices were eligible. */
  eligible: Count,
});

/**
 * An update accepted into the round (coordinator, after it is durable). In a DP round
 * (`round.opened.dp` not null) the record carries nothing computed from the update's content:
 * `blobDigest` is the update's commitment and `norm`, `clipped`, `bytes` and `numExamples` are
 * null (docs/privacy.md: ε does not cover un-noised per-update values, so they are not published).
 */
export const UpdateAcceptedEventSchema = z.strictObject({
  type: z.literal('update.accepted'),
  taskId: TaskIdSchema,
  roundId: RoundIdSchema,
  device: DevicePseudonymSchema,
  /**
   * SHA-256 of the delta blob; in a DP round the update's commitment instead:
   * HMAC-SHA-256 under the operator's commitment key of `<roundId>`, a zero byte and the blob's
   * SHA-256 in hex. Either way the same value names the update in `update.excluded` and in the
   * aggregation's participants.
   */
  blobDigest: DigestSchema,
  /** L2 norm of the delta as received (after the device clipped it); null in a DP round. */
  norm: NonNegative.nullable(),
  /** Clip bound the norm was checked against. */
  clipBound: Positive,
  /** Whether the device reported that clipping changed its delta; null in a DP round. */
  clipped: z.boolean().nullable(),
  /** Size of the delta blob; null in a DP round. */
  bytes: Count.nullable(),
  /** Examples the device says it trained on; null in a DP round. */
  numExamples: Count.nullable(),
});

/**
 * An update refused (coordinator); `reason` is the error code given to the device. In a DP round
 * `blobDigest` is the update's commitment (as in `update.accepted`) and `norm`, `clipped` and
 * `bytes` are null.
 */
export const UpdateRefusedEventSchema = z.strictObject({
  type: z.literal('update.refused'),
  taskId: TaskIdSchema,
  roundId: RoundIdSchema,
  device: DevicePseudonymSchema,
  reason: z.string().min(1).max(64),
  message: z.string().max(2000),
  blobDigest: DigestSchema.nullable(),
  norm: NonNegative.nullable(),
  clipBound: Positive.nullable(),
  clipped: z.boolean().nullable(),
  bytes: Count.nullable(),
});

/**
 * An accepted update taken out of its round before aggregation (coordinator), e.g. because its
 * device was revoked while the round was open (`reason` `REVOKED_DEVICE`). Written before the
 * round's `round.closed` or `round.abandoned`; that record's `accepted` no longer counts it, and
 * no aggregation may use its blob.
 */
export const UpdateExcludedEventSchema = z.strictObject({
  type: z.literal('update.excluded'),
  taskId: TaskIdSchema,
  roundId: RoundIdSchema,
  device: DevicePseudonymSchema,
  blobDigest: DigestSchema,
  /** Error code naming why, e.g. `REVOKED_DEVICE`. */
  reason: z.string().min(1).max(64),
  message: Reason,
});

/**
 * Refusals counted rather than logged one by one (coordinator). The first refusal of each
 * (round, device, reason) has its own `update.refused` record; its repeats are counted and written
 * here, so one device cannot grow the log by repeating a refused submission. `count` is the
 * number of repeats since the previous `update.refusals` record of the round: a round's refusals
 * add up to its `update.refused` records plus the `count`s of its `update.refusals` records.
 */
export const UpdateRefusalsEventSchema = z.strictObject({
  type: z.literal('update.refusals'),
  taskId: TaskIdSchema,
  roundId: RoundIdSchema,
  counts: z
    .array(
      z.strictObject({
        device: DevicePseudonymSchema,
        reason: z.string().min(1).max(64),
        count: z.number().int().positive(),
      }),
    )
    .min(1),
});

/** Round closed for aggregation (coordinator). */
export const RoundClosedEventSchema = z.strictObject({
  type: z.literal('round.closed'),
  taskId: TaskIdSchema,
  roundId: RoundIdSchema,
  accepted: Count,
  refused: Count,
  minReports: z.number().int().positive(),
  /**
   * Why reporting ended: `goal-reached` (accepted ≥ goalCount), `all-answered` (every selected
   * device sent an update or a skip, or had an update refused for a final reason
   * (FINAL_UPDATE_REFUSALS), before the deadline, below the goal), `deadline`.
   */
  reason: z.enum(['goal-reached', 'all-answered', 'deadline']),
});

/** Round abandoned (coordinator): quorum not met or a fault. Nothing from it may be promoted. */
export const RoundAbandonedEventSchema = z.strictObject({
  type: z.literal('round.abandoned'),
  taskId: TaskIdSchema,
  roundId: RoundIdSchema,
  accepted: Count,
  minReports: z.number().int().positive(),
  reason: Reason,
});

/** One update's share in an aggregate. */
export const AggregationParticipantSchema = z.strictObject({
  device: DevicePseudonymSchema,
  blobDigest: DigestSchema,
  /** Weight in the aggregate (e.g. numExamples for FedAvg; 0 for an update a robust rule dropped). */
  weight: NonNegative,
});

/**
 * One noised query of a round (DP tasks): Gaussian noise of standard deviation `noiseStd` added to
 * a query whose L2 sensitivity, under the zero-out relation, is `sensitivity`. Its RDP at order α
 * is α·(sensitivity / noiseStd)² / 2 (Mironov 2017); no noise (0) means ε = ∞.
 */
export const DpReleaseSchema = z.strictObject({
  /**
   * `update-sum`: the sum of the clipped updates (sensitivity: the round's clip norm C; the
   * published average is this sum divided by the number of participants, a public count).
   * `unclipped-count`: adaptive clipping's count of updates whose norm was within C, centred
   * (sensitivity 1/2; Andrew et al. 2021).
   */
  query: z.enum(['update-sum', 'unclipped-count']),
  sensitivity: Positive,
  noiseStd: NonNegative,
});
export type DpRelease = z.infer<typeof DpReleaseSchema>;

/**
 * How a DP round was charged, with every parameter needed to recompute ε from the log alone
 * (docs/privacy.md): total RDP at order α = α · Σ over charged rounds of Σ over `releases` of
 * (sensitivity / noiseStd)² / 2, converted to ε at the aggregation's `delta` with `conversion`
 * over `orders`. Written by the worker on every aggregation of a DP task, promoted or not.
 */
export const AggregationPrivacySchema = z.strictObject({
  /** RDP of the Gaussian mechanism, composed by adding RDP order by order (Mironov 2017). */
  accountant: z.literal('rdp-gaussian'),
  /** Neighbouring relation: one device's contribution replaced by nothing (Kairouz et al. 2021). */
  relation: z.literal('zero-out'),
  /** Devices are selected as a fixed-size set among those that checked in (`round.selected`). */
  sampling: z.literal('fixed-size'),
  /** Participants are named in the log: ε claims no amplification by sampling. */
  amplification: z.literal('none'),
  /** Rényi orders the accountant minimises over. */
  orders: z.array(z.number().gt(1)).min(1).max(1024),
  /** RDP → (ε, δ): `improved` (Balle et al. 2020) or `classic` (Mironov 2017). */
  conversion: z.enum(['improved', 'classic']),
  /** The noised queries this round computed. */
  releases: z.array(DpReleaseSchema).min(1).max(16),
  /** Rounds whose noised aggregate the task has been charged for so far, this one included. */
  chargedRounds: z.number().int().positive(),
});
export type AggregationPrivacy = z.infer<typeof AggregationPrivacySchema>;

/** The aggregate computed by the worker. */
export const AggregationEventSchema = z.strictObject({
  type: z.literal('aggregation'),
  taskId: TaskIdSchema,
  roundId: RoundIdSchema,
  /** Strategy name as configured, e.g. `fedavg`, `trimmed-mean`, `multi-krum`. */
  strategy: z.string().min(1).max(64),
  /** Strategy options that change the result (trim fraction, f, server learning rate, …). */
  strategyOptions: z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()])),
  /** How LoRA factors were combined, e.g. `ffa-lora` (exact), `lora-separate` (inexact), `bias-only`. */
  loraRule: z.string().min(1).max(64),
  participants: z.array(AggregationParticipantSchema).min(1),
  clipNorm: Positive,
  /** Gaussian noise multiplier; 0 when no noise was added. */
  noiseMultiplier: NonNegative,
  /** ε spent so far by the task (including this round) at `delta`; null without DP. */
  epsilon: NonNegative.nullable(),
  delta: z.number().gt(0).lt(1).nullable(),
  /** How this round was charged to ε (DP tasks; absent in logs written before it was recorded). */
  privacy: AggregationPrivacySchema.optional(),
  /** SHA-256 of the aggregate delta (safetensors) this produced. */
  aggregateDigest: DigestSchema,
  /** Until when the participants' blobs are retained for recomputation; null if not retained. */
  deltasRetainedUntil: EpochMsSchema.nullable(),
});

/** One drift-audit finding. */
export const AuditFindingSchema = z.strictObject({
  code: z.string().min(1).max(64),
  severity: z.enum(['info', 'warn', 'fail']),
  message: Reason,
  device: DevicePseudonymSchema.nullable(),
  value: z.number().nullable(),
});

/** Drift audit of a candidate aggregate (worker). */
export const AuditEventSchema = z.strictObject({
  type: z.literal('audit'),
  taskId: TaskIdSchema,
  roundId: RoundIdSchema,
  decision: z.enum(['pass', 'fail']),
  findings: z.array(AuditFindingSchema),
  metrics: z.record(z.string(), z.number()),
});

/** A new adapter version promoted to the fleet (worker). */
export const PromotionEventSchema = z.strictObject({
  type: z.literal('promotion'),
  taskId: TaskIdSchema,
  roundId: RoundIdSchema,
  version: z.number().int().positive(),
  parentVersion: Count,
  manifestDigest: DigestSchema,
  adapterDigest: DigestSchema,
});

/** A candidate refused (worker), with every reason. */
export const RejectionEventSchema = z.strictObject({
  type: z.literal('rejection'),
  taskId: TaskIdSchema,
  roundId: RoundIdSchema,
  reasons: z.array(Reason).min(1),
});

/** A rollback: a new version that re-promotes an older version's content. */
export const RollbackEventSchema = z.strictObject({
  type: z.literal('rollback'),
  taskId: TaskIdSchema,
  /** The new version number the rollback is published as. */
  version: z.number().int().positive(),
  /** The version whose content is restored. */
  rollbackOf: z.number().int().positive(),
  manifestDigest: DigestSchema,
  adapterDigest: DigestSchema,
  reason: Reason,
});

/** A policy change (task policy or coordinator-wide when taskId is null). */
export const PolicyChangedEventSchema = z.strictObject({
  type: z.literal('policy.changed'),
  taskId: TaskIdSchema.nullable(),
  previousPolicyDigest: DigestSchema.nullable(),
  policyDigest: DigestSchema,
  changes: z.array(z.strictObject({ path: z.string().min(1).max(200), from: z.json(), to: z.json() })),
  reason: Reason,
});

/**
 * An operator paused, resumed, stopped or archived a task (coordinator). Each task's records follow
 * TASK_CONTROL_MOVES from `active`. A round planned before a pause finishes; one not yet
 * aggregating when the task stops is abandoned after this record.
 */
export const TaskControlEventSchema = z.strictObject({
  type: z.literal('task.control'),
  taskId: TaskIdSchema,
  action: z.enum(TASK_CONTROL_ACTIONS),
  reason: Reason,
});

/**
 * Coordinator key rotation. Signed by the previous key; every later record is signed by
 * `newKeyId`. An auditor pins only the first key and follows the rotations.
 */
export const KeyRotatedEventSchema = z.strictObject({
  type: z.literal('key.rotated'),
  previousKeyId: PublicKeySchema,
  newKeyId: PublicKeySchema,
  reason: Reason,
});

export const RoundLogEventSchema = z.discriminatedUnion('type', [
  RoundOpenedEventSchema,
  RoundSelectedEventSchema,
  UpdateAcceptedEventSchema,
  UpdateRefusedEventSchema,
  UpdateRefusalsEventSchema,
  UpdateExcludedEventSchema,
  RoundClosedEventSchema,
  RoundAbandonedEventSchema,
  AggregationEventSchema,
  AuditEventSchema,
  PromotionEventSchema,
  RejectionEventSchema,
  RollbackEventSchema,
  PolicyChangedEventSchema,
  TaskControlEventSchema,
  KeyRotatedEventSchema,
]);
export type RoundLogEvent = z.infer<typeof RoundLogEventSchema>;
export type RoundLogEventType = RoundLogEvent['type'];
export type RoundLogEventOf<T extends RoundLogEventType> = Extract<RoundLogEvent, { type: T }>;

export const ROUND_LOG_EVENT_TYPES: readonly RoundLogEventType[] = RoundLogEventSchema.options.map(
  (option) => option.shape.type.value,
);

/** The round number of a round id `<taskId>:<n>`. */
export function roundNumberOf(roundId: string): number {
  const colon = roundId.lastIndexOf(':');
  return Number(roundId.slice(colon + 1));
}
