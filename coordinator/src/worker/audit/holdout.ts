/** Metrics of one adapter on the server holdout (computed by the worker with tfjs). */
export interface HoldoutMetrics {
  /** Accuracy in [0, 1]. */
  accuracy?: number;
  /** Mean loss (lower is better). */
  loss?: number;
  /** Holdout examples the metrics were measured on (for the binomial standard error). */
  examples?: number;
  /**
   * Per-example results, 1 = classified right, in a fixed order of the holdout examples (the same
   * order for every adapter): enables the exact paired test in holdout-improvement.ts.
   */
  correct?: Uint8Array;
}

/** Options of {@link compareOnHoldout}. */
export interface HoldoutComparisonOptions {
  candidate: HoldoutMetrics;
  /** The adapter the fleet runs now (the base model for the first version). */
  current: HoldoutMetrics;
  /** Largest absolute accuracy drop allowed (AuditPolicy.maxAccuracyDrop, e.g. 0.02). */
  maxAccuracyDrop: number;
  /** Used only when accuracy is missing on either side: largest relative loss increase. Default 0.05. */
  maxRelativeLossIncrease?: number;
}

export interface HoldoutComparison {
  pass: boolean;
  /** Holdout accuracy of the candidate and of the current adapter, when finite. */
  candidateAccuracy: number | null;
  currentAccuracy: number | null;
  /** current − candidate accuracy (positive = worse), or null when not both known. */
  accuracyDrop: number | null;
  /** (candidate − current) / |current| loss, or null when not both known. */
  relativeLossIncrease: number | null;
  /** One sentence for the auditor. */
  reason: string;
}

const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
/** Absolute slack of the accuracy comparison, far below one example in any real holdout. */
const FLOAT_SLACK = 1e-9;
const isMetric = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x);

/**
 * Candidate vs current adapter on the server holdout. Accuracy decides when both sides have it;
 * otherwise loss does; a candidate with neither (or with non-finite metrics) fails.
 */
export function compareOnHoldout(options: HoldoutComparisonOptions): HoldoutComparison {
  const { candidate, current, maxAccuracyDrop } = options;
  const maxLoss = options.maxRelativeLossIncrease ?? 0.05;
  const accuracies = {
    candidateAccuracy: isMetric(candidate.accuracy) ? candidate.accuracy : null,
    currentAccuracy: isMetric(current.accuracy) ? current.accuracy : null,
  };
  const accuracyDrop =
    isMetric(candidate.accuracy) && isMetric(current.accuracy) ? current.accuracy - candidate.accuracy : null;
  const relativeLossIncrease =
    isMetric(candidate.loss) && isMetric(current.loss)
      ? (candidate.loss - current.loss) / Math.max(Math.abs(current.loss), Number.MIN_VALUE)
      : null;
  const verdict = (pass: boolean, reason: string) => ({
    pass,
    ...accuracies,
    accuracyDrop,
    relativeLossIncrease,
    reason,
  });
  if (accuracyDrop !== null && isMetric(candidate.accuracy) && isMetric(current.accuracy)) {
    // Accuracies are ratios of counts; their difference carries float error (0.775 − 0.755 =
    // 0.020000000000000018): a drop equal to the allowed one is within it.
    const pass = accuracyDrop <= maxAccuracyDrop + FLOAT_SLACK;
    const change = `holdout accuracy ${pct(current.accuracy)} -> ${pct(candidate.accuracy)}`;
    return verdict(
      pass,
      pass
        ? `${change} (drop ${pct(Math.max(0, accuracyDrop))} within the allowed ${pct(maxAccuracyDrop)})`
        : `${change}: drop ${pct(accuracyDrop)} exceeds the allowed ${pct(maxAccuracyDrop)}`,
    );
  }
  if (relativeLossIncrease !== null && isMetric(candidate.loss) && isMetric(current.loss)) {
    const pass = relativeLossIncrease <= maxLoss;
    const change = `holdout loss ${current.loss.toPrecision(4)} -> ${candidate.loss.toPrecision(4)}`;
    return verdict(
      pass,
      pass
        ? `${change} (within the allowed +${pct(maxLoss)})`
        : `${change}: increase ${pct(relativeLossIncrease)} exceeds the allowed ${pct(maxLoss)}`,
    );
  }
  return verdict(false, 'holdout: candidate and current adapter lack comparable finite accuracy or loss');
}
