// Repeated runs of one configuration (its seeds) reduced to means with 95% confidence intervals:
// per round (the bands of the plots) and per run (final accuracy, rounds to a target accuracy,
// bytes, ε, wall time, per-device accuracy, and in attacked runs the backdoor accuracy and how
// precisely the defences caught the attackers).
import { z } from 'zod';
import type { RoundMetrics } from '../report/metrics.js';
import { meanInterval, type MeanInterval } from '../report/statistics.js';
import type { RunOutcome } from './run-outcome.js';

export const IntervalSchema = z.object({
  n: z.number().int().positive(),
  mean: z.number(),
  sd: z.number().nonnegative(),
  halfWidth: z.number().nonnegative().nullable(),
  low: z.number().nullable(),
  high: z.number().nullable(),
});

/** Per-round metrics averaged over the runs that reached the round (null: none had a value). */
export const ROUND_METRICS = [
  'accuracy',
  'loss',
  'participants',
  'bytesUp',
  'bytesDown',
  'epsilon',
  'backdoorAccuracy',
] as const;
export type RoundMetricName = (typeof ROUND_METRICS)[number];

/** Per-run numbers averaged over the runs. */
export const RUN_METRICS = [
  'finalAccuracy',
  'bestAccuracy',
  'committedRounds',
  'bytesUp',
  'bytesDown',
  'finalEpsilon',
  'wallSeconds',
  'setupSeconds',
  'perDeviceMean',
  'perDeviceWorst10',
  /** Backdoor runs: the backdoor accuracy of the last model. */
  'finalBackdoorAccuracy',
  /** Attacked runs: precision and recall of the run's caught updates (flagged or excluded). */
  'attackPrecision',
  'attackRecall',
] as const;
export type RunMetricName = (typeof RUN_METRICS)[number];

const nullableInterval = IntervalSchema.nullable();

export const StudyCellSchema = z.object({
  label: z.string().min(1),
  seeds: z.array(z.number().int().nonnegative()).min(1),
  /** Round by round (round 0: the starting model), over the runs that reached the round. */
  rounds: z.array(
    z.object({
      round: z.number().int().nonnegative(),
      values: z.record(z.enum(ROUND_METRICS), nullableInterval),
    }),
  ),
  /** Per-run numbers. */
  runs: z.record(z.enum(RUN_METRICS), nullableInterval),
  /** First round whose accuracy reached `target`; the interval is over the runs that reached it. */
  roundsToTarget: z
    .object({
      target: z.number(),
      reached: z.number().int().nonnegative(),
      of: z.number().int().positive(),
      interval: nullableInterval,
    })
    .nullable(),
  /** Runs whose round log failed verification (should be 0). */
  unverified: z.number().int().nonnegative(),
});
export type StudyCell = z.infer<typeof StudyCellSchema>;

/** The first round ≥ 1 at which `accuracy` ≥ `target`, or null. */
export function roundToTarget(metrics: readonly RoundMetrics[], target: number): number | null {
  return metrics.find((m) => m.round > 0 && m.accuracy !== null && m.accuracy >= target)?.round ?? null;
}

const intervalOf = (values: readonly (number | null)[]): MeanInterval | null => {
  const present = values.filter((v): v is number => v !== null && Number.isFinite(v));
  return present.length === 0 ? null : meanInterval(present);
};

function runValue(outcome: RunOutcome, name: RunMetricName): number | null {
  const rounds = outcome.metrics.filter((m) => m.round > 0);
  const accuracies = outcome.metrics.map((m) => m.accuracy).filter((a): a is number => a !== null);
  switch (name) {
    case 'finalAccuracy':
      return accuracies.at(-1) ?? null;
    case 'bestAccuracy':
      return accuracies.length > 0 ? Math.max(...accuracies) : null;
    case 'committedRounds':
      return rounds.filter((m) => m.decision === 'COMMITTED').length;
    case 'bytesUp':
      return outcome.metrics.reduce((sum, m) => sum + m.bytesUp, 0);
    case 'bytesDown':
      return outcome.metrics.reduce((sum, m) => sum + m.bytesDown, 0);
    case 'finalEpsilon':
      return outcome.metrics.at(-1)?.epsilon ?? null;
    case 'wallSeconds':
      return outcome.wallMs / 1000;
    case 'setupSeconds':
      return outcome.setupMs / 1000;
    case 'perDeviceMean':
      return outcome.perDevice?.mean ?? null;
    case 'perDeviceWorst10':
      return outcome.perDevice?.worst10 ?? null;
    case 'finalBackdoorAccuracy':
      return outcome.metrics.filter((m) => m.backdoorAccuracy !== undefined).at(-1)?.backdoorAccuracy ?? null;
    case 'attackPrecision':
      return outcome.attack?.precision ?? null;
    case 'attackRecall':
      return outcome.attack?.recall ?? null;
  }
}

/** Means and 95% intervals of one configuration's runs (one per seed). */
export function aggregateRuns(
  label: string,
  outcomes: readonly RunOutcome[],
  options: { target?: number } = {},
): StudyCell {
  const lastRound = Math.max(0, ...outcomes.flatMap((o) => o.metrics.map((m) => m.round)));
  const rounds = Array.from({ length: lastRound + 1 }, (_, round) => {
    const at = outcomes.map((o) => o.metrics.find((m) => m.round === round));
    const values = {} as Record<RoundMetricName, MeanInterval | null>;
    for (const name of ROUND_METRICS) values[name] = intervalOf(at.map((m) => m?.[name] ?? null));
    return { round, values };
  });
  const runs = {} as Record<RunMetricName, MeanInterval | null>;
  for (const name of RUN_METRICS) runs[name] = intervalOf(outcomes.map((o) => runValue(o, name)));
  const target = options.target;
  const reached =
    target === undefined
      ? []
      : outcomes.map((o) => roundToTarget(o.metrics, target)).filter((r): r is number => r !== null);
  return {
    label,
    seeds: outcomes.map((o) => o.seed),
    rounds,
    runs,
    roundsToTarget:
      target === undefined
        ? null
        : { target, reached: reached.length, of: outcomes.length, interval: intervalOf(reached) },
    unverified: outcomes.filter((o) => o.logVerified === false).length,
  };
}
