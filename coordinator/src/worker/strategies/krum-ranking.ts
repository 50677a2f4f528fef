// Krum scores and the ranking of candidates by them (Blanchard et al. 2017), decided on certified
// distance intervals (krum-distances.ts): the order returned is the order the definition gives —
// scores from `squaredDistance`, sorted ascending with ties to the lower index (Flower's argmin).
import { at } from '@flotilla/protocol';
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
  for (let k = 0; k < take; k++) sum += at(sorted, k);
  return sum;
}

/** Scores candidates of one set (one neighbour count). */
class Scorer {
  private readonly member: Uint8Array;
  private readonly take: number;

  constructor(
    private readonly d: PairDistances,
    private readonly candidates: readonly number[],
    m: number,
  ) {
    this.member = new Uint8Array(d.n);
    for (const i of candidates) this.member[i] = 1;
    this.take = Math.min(m, candidates.length - 1);
  }

  /**
   * Score of candidate i: the sum of its m smallest distances to the other candidates, added in
   * ascending order. Exact when every distance that can be among the m smallest is exact.
   */
  score(i: number): Score {
    const { d, take, member } = this;
    if (d.definitionOnly) {
      // The definition's computation as it stands: an Array sorted by (a, b) => a - b, whose order
      // for NaN distances (an update holding a NaN) only this reproduces.
      const row = this.candidates.filter((j) => j !== i).map((j) => d.lower(i, j));
      const score = headSum(
        row.sort((a, b) => a - b),
        take,
      );
      return { lo: score, hi: score, exact: true };
    }
    // Upper bounds: their sum over the m smallest, and the m-th, past which no distance can be
    // among the m smallest.
    const { threshold, sum: hi } = this.smallestUpperBounds(i);
    // Lower bounds in ascending order: their sum over the m smallest, and whether every distance
    // that can be among the m smallest is exact (then that sum, of exact values in ascending
    // order, is the definition's score).
    let lo = 0;
    let exact = true;
    let seen = 0;
    for (const j of d.rowByLower(i)) {
      if (member[j] !== 1) continue;
      const bound = d.lower(i, j);
      if (seen >= take && bound > threshold) break;
      if (seen < take) lo += bound;
      exact &&= d.isExact(i, j);
      seen += 1;
    }
    if (exact) return { lo, hi: lo, exact: true };
    const slack = ((take + 2) * U) / (1 - (take + 2) * U);
    return { lo: lo * (1 - slack), hi: hi * (1 + slack), exact: false };
  }

  /**
   * Over the m smallest upper bounds of candidate i's distances to the members: their sum, and the
   * m-th, past which no distance can be among the m smallest.
   */
  private smallestUpperBounds(i: number): { threshold: number; sum: number } {
    const { d, take, member } = this;
    let threshold = -Infinity;
    let sum = 0;
    let seen = 0;
    for (const j of d.rowByUpper(i)) {
      if (seen === take) break;
      if (member[j] !== 1) continue;
      threshold = d.upper(i, j);
      sum += threshold;
      seen += 1;
    }
    return { threshold, sum };
  }

  /** Computes the definition's distances that can enter candidate i's score. */
  settle(i: number): void {
    const { d } = this;
    const { threshold } = this.smallestUpperBounds(i);
    for (const j of this.candidates) if (j !== i && d.lower(i, j) <= threshold) d.computeExact(i, j);
  }

  /** For reporting: the sum of the m smallest distances as known (exact where computed). */
  estimate(i: number): number {
    const values = Float64Array.from(
      this.candidates.filter((j) => j !== i),
      (j) => this.d.value(i, j),
    );
    return headSum(values.sort(), this.take);
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
      const x = at(order, p);
      for (let q = p + 1; q < order.length; q++) {
        const y = at(order, q);
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
    .map((index, position) => ({ index, score: at(scores, position) }))
    .sort((a, b) => a.score - b.score || a.index - b.index)
    .map((entry) => entry.index);
}
