import { z } from 'zod';
import { AdapterSpecSchema, type AdapterSpec } from './adapter-spec.js';
import { TrainingPlanSchema } from './round-plan.js';
import { StrategyNameSchema } from './strategy-traits.js';
import { DigestSchema, EpochMsSchema, PublicKeySchema, SignatureSchema, TaskIdSchema } from './primitives.js';

/**
 * Round parameters. Names follow the field's vocabulary: Bonawitz et al. 2019 (goal count,
 * over-selection, pace steering) and Flower (`min_fit_clients` -> `minReports`). Every field but
 * `goalCount` and `training.learningRate` has a default; `minReports` defaults from the others
 * (`defaultMinReports`) when the task is parsed.
 */
export const RoundParamsSchema = z.object({
  /** Updates the round aims to collect (it closes once it has them). */
  goalCount: z.number().int().min(1),
  /** Selected devices = ceil(goalCount * overSelection). Default 1.3. */
  overSelection: z.number().min(1).default(1.3),
  /** Selection succeeds once this fraction of goalCount has checked in. */
  minGoalFraction: z.number().gt(0).max(1).default(0.8),
  /** Milliseconds selection may wait for devices, from the round's first check-in, before the round is abandoned. */
  selectionTimeoutMs: z.number().int().positive().default(30_000),
  /** Milliseconds from plan to reporting deadline. */
  reportingDeadlineMs: z.number().int().positive().default(60_000),
  /**
   * Quorum: fewest accepted updates for the round to commit at its deadline (Flower's
   * min_fit_clients); at most `goalCount`. Default `defaultMinReports`: what over-selection expects
   * to report from a round that started with the fewest devices selection allows.
   */
  minReports: z.number().int().min(1).optional(),
  /** Milliseconds the round still accepts updates after goalCount is reached. */
  acceptWindowMs: z.number().int().nonnegative().default(0),
  /** Base pace-steering delay in ms; jittered ±50%. */
  retryAfterMs: z.number().int().positive().default(5_000),
  /** Rounds to run before the task stops scheduling (0 = unbounded). Default 0. */
  maxRounds: z.number().int().nonnegative().default(0),
  training: TrainingPlanSchema,
  /** Local optimizer steps a device may take per round. Default 200. */
  maxSteps: z.number().int().positive().default(200),
  /** Seconds of local training a device may spend per round. Default 60. */
  maxSeconds: z.number().positive().default(60),
  /**
   * Device validation gate: the largest relative rise of the local holdout loss with which a
   * device still reports its update; null turns the gate off (devices report whatever their
   * holdout says, as in plain FedAvg). Default 0.05.
   */
  validationTolerance: z.number().nonnegative().nullable().default(0.05),
  /** 'int8' asks devices for 8-bit quantised deltas. Default 'none'. */
  quantization: z.enum(['none', 'int8']).default('none'),
});

export const StrategyConfigSchema = z.object({
  /** One of `STRATEGY_NAMES` (strategy-traits.ts). */
  name: StrategyNameSchema,
  /** Byzantine devices tolerated (Krum, Multi-Krum, Bulyan). */
  byzantine: z.number().int().nonnegative().default(0),
  /** Fraction trimmed from each end per coordinate (trimmed mean). */
  beta: z.number().min(0).lt(0.5).default(0.1),
  /** Updates kept by Multi-Krum. */
  keep: z.number().int().positive().optional(),
  /** Server learning rate and moments for the server optimizers. */
  serverLearningRate: z.number().positive().default(1),
  serverMomentum: z.number().min(0).lt(1).default(0.9),
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.99),
  tau: z.number().positive().default(1e-3),
  /** L2 bound for norm bounding. */
  normBound: z.number().positive().optional(),
  /** LoRA aggregation rule: ffa (exact for ffa-lora), fedit (A and B separately), product. */
  loraRule: z.enum(['ffa', 'fedit', 'product']).default('fedit'),
});
export type StrategyConfig = z.infer<typeof StrategyConfigSchema>;

export const DpPolicySchema = z.object({
  /**
   * Gaussian noise multiplier z > 0: noise std on the average is z * C / m. (Without noise ε is
   * infinite; to train without DP, omit `dp`.)
   */
  noiseMultiplier: z.number().positive(),
  /** δ of the (ε, δ) guarantee. */
  delta: z.number().gt(0).lt(1),
  /**
   * ε (at `delta`) the task may spend. Every noised aggregate is charged, promoted or not; a round
   * whose charge would pass the budget computes nothing and the task stops (docs/privacy.md).
   */
  epsilonBudget: z.number().positive(),
  /**
   * Devices in the population. Informational only: ε claims no amplification by sampling (devices
   * are chosen as a fixed-size set among those that checked in, and the log names them), so the
   * accountant does not use it. Optional; kept so existing task definitions stay valid.
   */
  populationSize: z.number().int().positive().optional(),
  adaptiveClip: z
    .object({
      targetUnclippedQuantile: z.number().gt(0).lt(1).default(0.5),
      learningRate: z.number().positive().default(0.2),
      /** Noise std of the unclipped-count; defaults to m / 20 (Andrew et al. 2021). */
      clippedCountStddev: z.number().nonnegative().optional(),
    })
    .optional(),
});
export type DpPolicy = z.infer<typeof DpPolicySchema>;

export const AuditPolicySchema = z.object({
  /**
   * Modified z-score (robust, MAD-based: Iglewicz & Hoaglin 1993) beyond which an update's norm,
   * cosine or distance to the round's robust reference is an outlier among the round's updates.
   * Default 3.5.
   */
  madThreshold: z.number().positive().default(3.5),
  /**
   * An update is flagged for pointing away only if its cosine to the round's robust reference is
   * an outlier (see `madThreshold`) AND its cosine to the coordinate-wise median of the round's
   * other updates is below this: it opposes them rather than being merely unusual (an honest
   * device holding other labels is orthogonal to the rest). Default 0.
   */
  minCosine: z.number().min(-1).max(1).default(0),
  /**
   * Relative distance ‖u − v‖ / max(‖u‖, ‖v‖) between two devices' updates at or below which both
   * are flagged as duplicates (independent devices never send the same update; honest ones in the
   * simulations are 0.7 or more apart, while int8 quantization alone puts two copies of one update
   * at most 0.015 apart). Default 0.03.
   */
  duplicateDistance: z.number().min(0).lt(1).default(0.03),
  /**
   * Fraction of flagged updates above which the candidate is rejected, unless the holdout shows it
   * better beyond noise (`holdoutSignificance`). Default 0.34.
   */
  maxFlaggedFraction: z.number().min(0).max(1).default(0.34),
  /**
   * Largest per-module ‖ΔW‖/‖W‖ drift from the base. A candidate module beyond it is scaled back
   * onto it (trust region) before evaluation and promotion. Default 1.
   */
  maxModuleDrift: z.number().positive().default(1),
  /** Largest holdout accuracy drop allowed against the current adapter (absolute). Default 0.02. */
  maxAccuracyDrop: z.number().min(0).max(1).default(0.02),
  /**
   * One-sided significance level of the holdout test that a candidate is better than the current
   * adapter beyond measurement noise (exact paired test on the same examples when available).
   * Default 0.05.
   */
  holdoutSignificance: z.number().gt(0).lt(0.5).default(0.05),
  /**
   * Rejections in a row (since the last promotion) after which the task stops, with the reason in
   * the last rejection; 0 = never stop. A spent privacy budget stops the task at once. Default 10.
   */
  maxConsecutiveRejections: z.number().int().nonnegative().default(10),
  /**
   * Whether the audit decides. `false` turns the drift audit off, as in plain FedAvg (McMahan et
   * al. 2017): every check still runs and is logged, but only an empty or non-finite candidate
   * and a spent privacy budget reject; drift, flagged updates and the holdout are recorded only,
   * and the trust region does not scale modules back. Optional without a default (absent means
   * enforced), so tasks signed before it keep their bytes.
   */
  enforce: z.boolean().optional(),
  /**
   * `true`: updates the per-update screen flags are left out of the aggregate (weight 0 in the
   * round log's `aggregation.participants`, their indices in `strategyOptions.screenedOut`), so a
   * flagged update moves nothing, instead of being only recorded while the strategy still takes
   * it. Not with differential privacy, where no decision may depend on one device's un-noised
   * update (registration refuses the combination). Optional without a default (absent means
   * `false`), so tasks signed before it keep their bytes.
   */
  excludeFlagged: z.boolean().optional(),
});
export type AuditPolicy = z.infer<typeof AuditPolicySchema>;

/**
 * How the aggregate weighs each accepted update (McMahan et al. 2017 weigh by examples). The
 * device states `numExamples` itself, so the weight is a claim: `maxExamplesPerUpdate` refuses
 * claims past what the round's budget allows, and `equal` / `capped` bound one device's share
 * further. Under differential privacy every update weighs 1 whatever the rule (DP-FedAvg).
 */
export const UpdateWeightingSchema = z.discriminatedUnion('rule', [
  /** weight = numExamples (≤ `maxExamplesPerUpdate`, refused above it). */
  z.object({ rule: z.literal('examples') }),
  /** weight = 1 for every update. */
  z.object({ rule: z.literal('equal') }),
  /** weight = min(numExamples, cap); `cap` in examples. */
  z.object({ rule: z.literal('capped'), cap: z.number().int().positive() }),
]);
export type UpdateWeighting = z.infer<typeof UpdateWeightingSchema>;

export const TaskPolicySchema = z.object({
  /**
   * Modules devices may touch; an update naming any other is refused. Default: the adapter's
   * `targetModules`.
   */
  allowedModules: z.array(z.string()).min(1).optional(),
  /** Global L2 clip bound C on each delta (no default: it decides how far a round can move). */
  clipNorm: z.number().positive(),
  /**
   * Largest upload in bytes. Default `defaultMaxBlobBytes`: a float32 delta of the whole adapter
   * plus 64 KiB for the file header.
   */
  maxBlobBytes: z.number().int().positive().optional(),
  /**
   * Largest `numExamples` one update may claim, in examples; an update claiming more is refused
   * with `EXAMPLES_EXCEEDED`. Default (`defaultMaxExamplesPerUpdate`): `rounds.maxSteps ×
   * rounds.training.batchSize`, the most examples a device can train on within the round's
   * budget. The coordinator writes the default into the task when it registers it.
   */
  maxExamplesPerUpdate: z.number().int().positive().optional(),
  /** How updates are weighed in the aggregate. Default `{ rule: 'examples' }`. */
  weighting: UpdateWeightingSchema.default({ rule: 'examples' }),
  /** How the worker aggregates. Default `{ name: 'fedavg' }`. */
  strategy: StrategyConfigSchema.prefault({ name: 'fedavg' }),
  /** Differential privacy; absent (the default): no noise, no ε. */
  dp: DpPolicySchema.optional(),
  /** Drift audit thresholds. Default: every threshold at its own default. */
  audit: AuditPolicySchema.prefault({}),
  /**
   * Lets auditors (auditor token) download this task's accepted raw deltas from `GET /blobs`.
   * Absent or false (the default): auditors get digests and recomputation results, never a
   * device's pre-noise delta. Optional without a default, so tasks signed before it keep their bytes.
   */
  auditorDeltaAccess: z.boolean().optional(),
});
/**
 * The fields of a task definition as written (cross-field defaults not yet applied); use
 * `TaskDefinitionSchema` to parse a task.
 */
export const TaskDefinitionFieldsSchema = z.object({
  taskId: TaskIdSchema,
  description: z.string().max(2000).default(''),
  baseModel: z.object({
    /** Digest of the base model bundle (tfjs model.json with weights embedded). */
    digest: DigestSchema,
    format: z.literal('tfjs-layers-bundle'),
    bytes: z.number().int().positive(),
  }),
  adapter: AdapterSpecSchema,
  /**
   * Input/output sizes of each adaptable dense layer (tfjs kernel [in, out]), so the coordinator
   * can check delta shapes: `lora_A` [r, in], `lora_B` [out, r], bias [out]. Required by the
   * coordinator for every target module.
   */
  moduleShapes: z
    .record(z.string(), z.object({ in: z.number().int().positive(), out: z.number().int().positive() }))
    .optional(),
  rounds: RoundParamsSchema,
  policy: TaskPolicySchema,
  /** Registration time, ms since the epoch. Default: when the task is parsed (registered). */
  createdAt: EpochMsSchema.default(() => Date.now()),
});

/**
 * Default quorum: the updates over-selection expects from a round that started with the fewest
 * devices selection accepts. Selection starts a round once `minGoalFraction × goalCount` devices
 * checked in, and over-selection plans on one in `overSelection` selected devices not reporting
 * (Bonawitz et al. 2019), so the round should commit with `minGoalFraction × goalCount /
 * overSelection` reports (rounded down, at least 1). With the defaults (0.8, 1.3) a goal of 10
 * commits with 6, so one refusal or dropout does not abandon the round.
 */
export function defaultMinReports(rounds: {
  goalCount: number;
  minGoalFraction: number;
  overSelection: number;
}): number {
  return Math.max(1, Math.floor((rounds.goalCount * rounds.minGoalFraction) / rounds.overSelection));
}

/** File header room in the default upload cap (tensor names, shapes, offsets, metadata), bytes. */
export const BLOB_HEADER_ALLOWANCE_BYTES = 64 * 1024;

/**
 * Default `policy.maxBlobBytes`: the float32 delta of every adapter tensor (LoRA A [r, in] and
 * B [out, r]; a bias [out]; a full kernel [out, in] and bias) plus `BLOB_HEADER_ALLOWANCE_BYTES`.
 */
export function defaultMaxBlobBytes(
  spec: AdapterSpec,
  moduleShapes: Record<string, { in: number; out: number }>,
): number | null {
  let values = 0;
  for (const module of spec.targetModules) {
    const shape = moduleShapes[module];
    if (!shape) return null;
    if (spec.mode === 'lora' || spec.mode === 'ffa-lora') values += spec.r * (shape.in + shape.out);
    else if (spec.mode === 'bias') values += shape.out;
    else values += shape.out * shape.in + shape.out;
  }
  return 4 * values + BLOB_HEADER_ALLOWANCE_BYTES;
}

/** A task: what a fleet trains. Registered by an operator, signed by the coordinator. */
export const TaskDefinitionSchema = TaskDefinitionFieldsSchema.transform((task, ctx) => {
  const { rounds, policy } = task;
  const minReports = rounds.minReports ?? defaultMinReports(rounds);
  if (minReports > rounds.goalCount)
    ctx.addIssue({
      code: 'custom',
      path: ['rounds', 'minReports'],
      message: `must be at most rounds.goalCount (${rounds.goalCount}): a round closes once it has goalCount updates`,
    });
  const maxBlobBytes =
    policy.maxBlobBytes ?? defaultMaxBlobBytes(task.adapter, task.moduleShapes ?? {}) ?? null;
  if (maxBlobBytes === null) {
    ctx.addIssue({
      code: 'custom',
      path: ['policy', 'maxBlobBytes'],
      message: 'is required when moduleShapes does not give the shape of every target module',
    });
    return z.NEVER;
  }
  return {
    ...task,
    rounds: { ...rounds, minReports },
    policy: { ...policy, allowedModules: policy.allowedModules ?? task.adapter.targetModules, maxBlobBytes },
  };
});
export type TaskDefinition = z.output<typeof TaskDefinitionSchema>;
export type TaskDefinitionInput = z.input<typeof TaskDefinitionSchema>;
/** Round parameters of a parsed task (every default applied). */
export type RoundParams = TaskDefinition['rounds'];
/** Policy of a parsed task (every default applied). */
export type TaskPolicy = TaskDefinition['policy'];

/**
 * The issues of a failed parse as one line, each prefixed with the path of the field it concerns,
 * e.g. `rounds.goalCount: Invalid input: expected number, received undefined`.
 */
export function describeTaskIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || '(task)'}: ${issue.message}`).join('; ');
}

export const SignedTaskSchema = z.object({
  task: TaskDefinitionSchema,
  coordinatorKey: PublicKeySchema,
  signature: SignatureSchema,
});
export type SignedTask = z.infer<typeof SignedTaskSchema>;
