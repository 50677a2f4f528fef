import { z } from 'zod';
import { AttackGroundTruthSchema } from './attack-metrics.js';

/** What one round produced, as the simulation runner records it. */
export const RoundMetricsSchema = z.object({
  /** Round number, 1-based. */
  round: z.number().int().min(0),
  /** Test accuracy of the adapter in force after the round, in [0, 1] (null if not evaluated). */
  accuracy: z.number().min(0).max(1).nullable(),
  /** Mean test cross-entropy, nats per example (null if not evaluated). */
  loss: z.number().nonnegative().nullable(),
  /**
   * Backdoor runs: share of the triggered test inputs (true class not the target) the adapter in
   * force puts in the target class, in [0, 1].
   */
  backdoorAccuracy: z.number().min(0).max(1).optional(),
  /** Updates accepted into the aggregate. */
  participants: z.number().int().nonnegative(),
  /** Updates refused, by refusal reason (error code or 'late', 'dropped', …). */
  refused: z.record(z.string(), z.number().int().nonnegative()).default({}),
  /** Bytes uploaded by devices this round. */
  bytesUp: z.number().nonnegative(),
  /** Bytes downloaded by devices this round (base model, adapters, manifests, every HTTP body). */
  bytesDown: z.number().nonnegative(),
  /**
   * Of `bytesDown`, the adapter artifacts (full adapters and deltas): what devices fetch to follow
   * the fleet's versions. Absent in reports written before it was counted.
   */
  adapterBytesDown: z.number().nonnegative().optional(),
  /** Cumulative ε spent after this round (null without DP). */
  epsilon: z.number().nonnegative().nullable(),
  decision: z.enum(['COMMITTED', 'REJECTED', 'ABANDONED']),
  /** Why the worker decided as it did (audit reasons). */
  reasons: z.array(z.string()).default([]),
  /** Durations in ms by phase (e.g. selection, reporting, aggregation, total). */
  timings: z.record(z.string(), z.number().nonnegative()).default({}),
});
export type RoundMetrics = z.infer<typeof RoundMetricsSchema>;
export type RoundMetricsInput = z.input<typeof RoundMetricsSchema>;

/** One labelled run (a scenario) of a report; several runs make a comparison. */
export const RunMetricsSchema = z.object({
  label: z.string().min(1),
  metrics: z.array(RoundMetricsSchema),
  /** Runs with attackers: who they were and how many of their updates the defences caught. */
  attack: AttackGroundTruthSchema.optional(),
});
export type RunMetrics = z.infer<typeof RunMetricsSchema>;
export type RunMetricsInput = z.input<typeof RunMetricsSchema>;

/** The promoted model's accuracy on one device's own held-out examples. */
export const DeviceAccuracySchema = z.object({
  deviceId: z.string().min(1),
  /** Held-out examples of the device. */
  examples: z.number().int().positive(),
  accuracy: z.number().min(0).max(1),
  /** Ground truth: the device was an attacker in the run. */
  byzantine: z.boolean(),
});
export type DeviceAccuracy = z.infer<typeof DeviceAccuracySchema>;

/** The distribution of per-device accuracy, each device counting once. */
export const PerDeviceSummarySchema = z.object({
  devices: z.number().int().positive(),
  mean: z.number().min(0).max(1),
  /** Mean accuracy of the worst 10% of devices (the ⌈k/10⌉ lowest of k). */
  worst10: z.number().min(0).max(1),
  min: z.number().min(0).max(1),
});
export type PerDeviceSummary = z.infer<typeof PerDeviceSummarySchema>;

/** Everything a report shows. */
export const ReportInputSchema = z.object({
  title: z.string().min(1),
  /** The tfjs backend that ran the devices (and the base model), e.g. 'wasm'. */
  backend: z.string().min(1),
  description: z.string().default(''),
  runs: z.array(RunMetricsSchema).min(1),
  /** Reference accuracies drawn as horizontal lines (base model clean/shifted, centralized). */
  baselines: z.array(z.object({ label: z.string().min(1), accuracy: z.number().min(0).max(1) })).default([]),
  /** Extra facts listed in the report (key -> value). */
  facts: z.record(z.string(), z.string()).default({}),
  /** Accuracy of the final promoted model on each device's own holdout (one run's report). */
  perDevice: z.object({ summary: PerDeviceSummarySchema, devices: z.array(DeviceAccuracySchema) }).optional(),
});
export type ReportInput = z.infer<typeof ReportInputSchema>;
export type ReportInputRaw = z.input<typeof ReportInputSchema>;
