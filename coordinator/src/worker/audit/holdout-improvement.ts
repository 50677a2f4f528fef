// Is a candidate better than the current adapter on the server holdout beyond measurement noise?
// With per-example results on the same examples, an exact one-sided McNemar (sign) test on the
// discordant pairs; with only accuracies and the holdout size, a one-sided z-test whose standard
// error treats the two accuracies as independent binomial proportions (conservative here: both
// are measured on the same examples, which correlates them positively).
import { normalCdf } from '@flotilla/protocol';
import type { HoldoutMetrics } from './holdout.js';

export interface HoldoutImprovement {
  /** True when the one-sided p-value is below the significance level. */
  beyondNoise: boolean;
  test: 'paired-exact' | 'binomial-se';
  /** One-sided p-value of "the candidate is no better than the current adapter". */
  pValue: number;
  /** Holdout examples only the candidate gets right (paired test), else null. */
  candidateOnly: number | null;
  /** Holdout examples only the current adapter gets right (paired test), else null. */
  currentOnly: number | null;
  /** One sentence for the auditor. */
  reason: string;
}

const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
const pText = (p: number): string => (p < 1e-4 ? p.toExponential(1) : p.toPrecision(2));

function logAdd(a: number, b: number): number {
  if (a === -Infinity) return b;
  const hi = Math.max(a, b);
  return hi + Math.log1p(Math.exp(Math.min(a, b) - hi));
}

/** P(X >= k) for X ~ Binomial(n, 1/2), summed in log space (no underflow for large n). */
export function binomialHalfUpperTail(k: number, n: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  // log C(n, j) from j = n downwards: C(n, j−1) = C(n, j) · j / (n − j + 1).
  let logTerm = 0;
  let logSum = 0; // j = n
  for (let j = n; j > k; j--) {
    logTerm += Math.log(j) - Math.log(n - j + 1);
    logSum = logAdd(logSum, logTerm);
  }
  return Math.min(1, Math.exp(logSum - n * Math.LN2));
}

function pairedCounts(
  candidate: Uint8Array,
  current: Uint8Array,
): { candidateOnly: number; currentOnly: number } {
  let candidateOnly = 0;
  let currentOnly = 0;
  for (let i = 0; i < candidate.length; i++) {
    const a = candidate[i] === 1;
    const b = current[i] === 1;
    if (a && !b) candidateOnly++;
    else if (b && !a) currentOnly++;
  }
  return { candidateOnly, currentOnly };
}

/**
 * Tests whether `candidate` beats `current` on the holdout beyond noise, at one-sided level
 * `significance`. Null when neither per-example results of equal length nor accuracies with a
 * holdout size are known for both.
 */
export function holdoutImprovement(options: {
  candidate: HoldoutMetrics;
  current: HoldoutMetrics;
  significance: number;
}): HoldoutImprovement | null {
  const { candidate, current, significance } = options;
  if (candidate.correct && current.correct && candidate.correct.length === current.correct.length) {
    const { candidateOnly, currentOnly } = pairedCounts(candidate.correct, current.correct);
    const pValue = binomialHalfUpperTail(candidateOnly, candidateOnly + currentOnly);
    const beyondNoise = candidateOnly > currentOnly && pValue < significance;
    const n = candidate.correct.length;
    return {
      beyondNoise,
      test: 'paired-exact',
      pValue,
      candidateOnly,
      currentOnly,
      reason:
        `paired holdout test on ${n} examples: ${candidateOnly} right only with the candidate, ` +
        `${currentOnly} only with the current adapter (one-sided exact p = ${pText(pValue)}; ` +
        `${beyondNoise ? 'better beyond noise' : 'not better beyond noise'} at ${significance})`,
    };
  }
  const a = candidate.accuracy;
  const b = current.accuracy;
  const n = Math.min(candidate.examples ?? 0, current.examples ?? 0);
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || !(n > 0))
    return null;
  const se = Math.sqrt((a * (1 - a) + b * (1 - b)) / n);
  const diff = a - b;
  const pValue = se === 0 ? (diff > 0 ? 0 : 1) : 1 - normalCdf(diff / se);
  const beyondNoise = diff > 0 && pValue < significance;
  return {
    beyondNoise,
    test: 'binomial-se',
    pValue,
    candidateOnly: null,
    currentOnly: null,
    reason:
      `holdout accuracy ${pct(b)} -> ${pct(a)} on ${n} examples, standard error ${pct(se)} ` +
      `(one-sided p = ${pText(pValue)}; ${beyondNoise ? 'better beyond noise' : 'not better beyond noise'} at ${significance})`,
  };
}
