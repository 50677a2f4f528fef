// Krum scores and the ranking of candidates by them (Blanchard et al. 2017), decided on certified
// distance intervals (krum-distances.ts): the order returned is the order the definition gives —
// scores from `squaredDistance`, sorted ascending with ties to the lower index (Flower's argmin).
import type { PairDistances } from './krum-distances.js';

const U = 2 ** -53;

/** Krum's neighbour count for c candidates: max(1, c − f − 2) (Flower's, so small rounds work). */
export function neighbourCount(candidates: number, f: number): number {
  return Math.max(1, candidates - f - 2);
}

interface Score {
  lo: number;
  hi: number;
  /** True when lo = hi is the definition's score. */
  exact: boolean;
}

/** Sum of the first `take` of `sorted`, in order (as the definition adds the m smallest). */
function headSum(sorted: ArrayLike<number>, take: number): number {
  let sum = 0;
  for (let k = 0; k < take; k++) sum += sorted[k] ?? NaN;
  return sum;
}

/** Scores candidates of one set (one neighbour count), with scratch rows sized once. */
class Scorer {
  private readonly lows: Float64Array;
  private readonly highs: Float64Array;

  constructor(
    private readonly d: PairDistances,
    private readonly candidates: readonly number[],
    private readonly m: number,
  ) {
    this.lows = new Float64Array(candidates.length);
    this.highs = new Float64Array(candidates.length);
  }

  /**
   * Score of candidate i: the sum of its m smallest distances to the other candidates, added in
   * ascending order. Exact when every distance that can be among the m smallest is exact.
   */
  score(i: number): Score {
    const { d, candidates } = this;
    let count = 0;
    let allExact = true;
    for (const j of candidates) {
      if (j === i) continue;
      this.lows[count] = d.lower(i, j);
      this.highs[count] = d.upper(i, j);
      allExact &&= d.isExact(i, j);
      count += 1;
    }
    const take = Math.min(this.m, count);
    const lows = this.lows.subarray(0, count);
    if (allExact) {
      // The definition's computation as it stands: an Array sorted by (a, b) => a - b, whose order
      // for NaN distances (an update holding a NaN) only this reproduces.
      const score = headSum(
        Array.from(lows).sort((a, b) => a - b),
        take,
      );
      return { lo: score, hi: score, exact: true };
    }
    const highs = this.highs.subarray(0, count).sort();
    const threshold = take === 0 ? -Infinity : (highs[take - 1] ?? Infinity);
    // Finite from here (non-finite inputs make every distance exact). The m smallest are among
    // the contenders (lower bound ≤ threshold); if those are all exact, so is their sorted sum.
    let contenders = 0;
    let contendersExact = true;
    for (const j of candidates) {
      if (j === i || d.lower(i, j) > threshold) continue;
      this.lows[contenders++] = d.lower(i, j);
      contendersExact &&= d.isExact(i, j);
    }
    if (contendersExact) {
      const score = headSum(this.lows.subarray(0, contenders).sort(), take);
      return { lo: score, hi: score, exact: true };
    }
    let k = 0;
    for (const j of candidates) if (j !== i) this.lows[k++] = d.lower(i, j);
    const slack = ((take + 2) * U) / (1 - (take + 2) * U);
    return {
      lo: headSum(lows.sort(), take) * (1 - slack),
      hi: headSum(highs, take) * (1 + slack),
      exact: false,
    };
  }

  /** Computes the definition's distances that can enter candidate i's score. */
  settle(i: number): void {
    const { d, candidates } = this;
    let count = 0;
    for (const j of candidates) if (j !== i) this.highs[count++] = d.upper(i, j);
    const take = Math.min(this.m, count);
    const threshold = take === 0 ? -Infinity : (this.highs.subarray(0, count).sort()[take - 1] ?? Infinity);
    for (const j of candidates) if (j !== i && d.lower(i, j) <= threshold) d.computeExact(i, j);
  }

  /** For reporting: the sum of the m smallest distances as known (exact where computed). */
  estimate(i: number): number {
    let count = 0;
    for (const j of this.candidates) if (j !== i) this.lows[count++] = this.d.value(i, j);
    return headSum(this.lows.subarray(0, count).sort(), Math.min(this.m, count));
  }
}

export interface Ranking {
  /** Candidates in the definition's order; only the first `keep` positions are certain. */
  order: number[];
  /** Each candidate's score (in the order of `candidates`): the definition's where computed, else
   * the Gram estimate; only with `withScores`. */
  scores: number[];
}

/**
 * The candidates ranked by Krum score within the set, ties to the lower index, certain in the
 * first `keep` positions (and in which candidates fill them).
 */
export function rankCandidates(
  d: PairDistances,
  candidates: readonly number[],
  options: { f: number; keep: number; withScores?: boolean },
): Ranking {
  const scorer = new Scorer(d, candidates, neighbourCount(candidates.length, options.f));
  // Each pass settles at least one more candidate, so this ends within candidates.length + 1 passes.
  for (;;) {
    const scores = new Map(candidates.map((i) => [i, scorer.score(i)]));
    const score = (i: number): Score => scores.get(i) ?? { lo: NaN, hi: NaN, exact: true };
    const finish = (order: number[]): Ranking => ({
      order,
      scores: options.withScores
        ? candidates.map((i) => (score(i).exact ? score(i).lo : scorer.estimate(i)))
        : [],
    });
    if (candidates.every((i) => score(i).exact)) {
      return finish(
        rankByScore(
          candidates,
          candidates.map((i) => score(i).lo),
        ),
      );
    }
    const key = (i: number): number => (score(i).lo + score(i).hi) / 2;
    const order = [...candidates].sort((a, b) => key(a) - key(b) || a - b);
    const unsettled = new Set<number>();
    const certain = Math.min(options.keep, order.length);
    for (let p = 0; p < certain; p++) {
      const x = order[p] ?? -1;
      for (let q = p + 1; q < order.length; q++) {
        const y = order[q] ?? -1;
        if (!certainlyBefore(d, x, y, score(x), score(y))) [x, y].forEach((c) => unsettled.add(c));
      }
    }
    if (unsettled.size === 0) return finish(order);
    const before = d.computed;
    for (const c of unsettled) if (!score(c).exact) scorer.settle(c);
    if (d.computed === before) {
      // Nothing left to compute: every unsettled candidate is exact, and exact ones compare exactly.
      return finish(
        rankByScore(
          candidates,
          candidates.map((i) => score(i).lo),
        ),
      );
    }
  }
}

function certainlyBefore(d: PairDistances, x: number, y: number, sx: Score, sy: Score): boolean {
  if (sx.exact && sy.exact) return sx.lo < sy.lo || (sx.lo === sy.lo && x < y);
  // Bit-for-bit equal updates have equal scores (the same distances to everyone else).
  if (d.isTwin(x, y)) return x < y;
  return sx.hi < sy.lo;
}

/** Candidate indices ordered by score, ties to the lower index (Flower's argmin). */
export function rankByScore(candidates: readonly number[], scores: readonly number[]): number[] {
  return candidates
    .map((index, position) => ({ index, score: scores[position] ?? 0 }))
    .sort((a, b) => a.score - b.score || a.index - b.index)
    .map((entry) => entry.index);
}
