import { FlotillaError, at } from '@flotilla/protocol';

/** Distribution of update norms, as recorded in the audit summary. */
export interface NormSummary {
  count: number;
  min: number;
  median: number;
  max: number;
  /** Median absolute deviation from the median (unscaled). */
  mad: number;
}

/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new FlotillaError('INTERNAL', 'median of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const upper = at(sorted, mid);
  return sorted.length % 2 === 1 ? upper : (at(sorted, mid - 1) + upper) / 2;
}

export function summarizeNorms(norms: readonly number[]): NormSummary {
  const med = median(norms);
  return {
    count: norms.length,
    min: Math.min(...norms),
    median: med,
    max: Math.max(...norms),
    mad: median(norms.map((x) => Math.abs(x - med))),
  };
}

/** Options of {@link modifiedZScores} and {@link madOutliers}. */
export interface ModifiedZOptions {
  /**
   * Floor on the robust spread, relative to |median|. Default 1e-3. Clipped updates often share
   * the same norm C up to float32 rounding, which makes the MAD ~1e-7·C and would turn rounding
   * noise into "outliers"; spreads below 0.1% of the median are treated as 0.1%.
   */
  minRelativeSpread?: number;
  /** Absolute floor on the robust spread, in the values' unit (e.g. 0.05 for cosines). Default 0. */
  minSpread?: number;
}

const MAD_TO_SIGMA = 1 / 0.6745; // 1.4826: MAD of a normal distribution is 0.6745 σ
const MEAN_AD_TO_SIGMA = 1.253314; // sqrt(π/2): mean absolute deviation of a normal is 0.7979 σ

/**
 * Modified z-scores M_i = 0.6745 (x_i − median) / MAD (Iglewicz & Hoaglin 1993, "How to Detect and
 * Handle Outliers"), i.e. (x_i − median) / σ̂ with σ̂ = MAD / 0.6745. When that σ̂ is 0 (more than
 * half the values are equal, and the median is 0 so the relative floor is 0 too), σ̂ falls back to
 * 1.253314 · mean absolute deviation (the usual convention, e.g. IBM SPSS); if every value is
 * equal, every score is 0.
 */
export function modifiedZScores(values: readonly number[], options: ModifiedZOptions = {}): number[] {
  if (values.length === 0) return [];
  const med = median(values);
  const deviations = values.map((x) => Math.abs(x - med));
  const floor = Math.max((options.minRelativeSpread ?? 1e-3) * Math.abs(med), options.minSpread ?? 0);
  let sigma = Math.max(median(deviations) * MAD_TO_SIGMA, floor);
  if (sigma === 0) sigma = (MEAN_AD_TO_SIGMA * deviations.reduce((sum, d) => sum + d, 0)) / values.length;
  if (sigma === 0) return values.map(() => 0);
  return values.map((x) => (x - med) / sigma);
}

/** Options of {@link madOutliers}. */
export interface MadOutlierOptions extends ModifiedZOptions {
  /** Modified z-score above which a value is an outlier. Default 3.5 (Iglewicz & Hoaglin). */
  threshold?: number;
}

/**
 * Indices whose modified z-score exceeds `threshold`. One-sided: only unusually LARGE norms are
 * flagged, since they are what can dominate an average; a small norm is a device that moved
 * little and has little influence.
 */
export function madOutliers(
  values: readonly number[],
  options: MadOutlierOptions = {},
): { scores: number[]; outliers: number[] } {
  const threshold = options.threshold ?? 3.5;
  const scores = modifiedZScores(values, options);
  const outliers: number[] = [];
  scores.forEach((score, index) => {
    if (score > threshold) outliers.push(index);
  });
  return { scores, outliers };
}
