// Pairwise covering arrays: a set of runs in which every pair of factor values that can occur
// together (in some valid combination) occurs in at least one run. The full product of a test
// matrix is often thousands of combinations; a pairwise cover is a few dozen, and finds every
// fault that needs only two factors to show (Kuhn, Wallace & Gallo 2004: most field faults do).

/** Factor name → its values, in a fixed order. */
export type Factors = Readonly<Record<string, readonly string[]>>;

/** One combination: a value for every factor. */
export type Combination<F extends Factors> = { [K in keyof F]: F[K][number] };

/** Every combination of the factors' values, in a fixed order (the first factor varies slowest). */
export function allCombinations<F extends Factors>(factors: F): Array<Combination<F>> {
  let out: Array<Record<string, string>> = [{}];
  for (const [name, values] of Object.entries(factors))
    out = out.flatMap((partial) => values.map((value) => ({ ...partial, [name]: value })));
  return out as Array<Combination<F>>;
}

/** The value pairs of one combination, as `factor=value|factor=value` keys (factors in order). */
export function pairsOf<F extends Factors>(factors: F, combination: Combination<F>): string[] {
  const names = Object.keys(factors);
  const out: string[] = [];
  for (let i = 0; i < names.length; i++)
    for (let j = i + 1; j < names.length; j++) {
      const a = names[i] ?? '';
      const b = names[j] ?? '';
      out.push(`${a}=${String(combination[a])}|${b}=${String(combination[b])}`);
    }
  return out;
}

/** Every pair that some valid combination contains: what a pairwise cover must cover. */
export function coverablePairs<F extends Factors>(
  factors: F,
  valid: (combination: Combination<F>) => boolean,
): Set<string> {
  return new Set(
    allCombinations(factors)
      .filter(valid)
      .flatMap((c) => pairsOf(factors, c)),
  );
}

/**
 * A pairwise cover of the valid combinations, greedily: each step takes the valid combination
 * that covers the most pairs not yet covered (the first such in `allCombinations` order, so the
 * result is deterministic), until every coverable pair is covered. `needed` narrows the pairs
 * that must be covered (default: all).
 */
export function pairwiseCover<F extends Factors>(
  factors: F,
  valid: (combination: Combination<F>) => boolean,
  needed: (pair: string) => boolean = () => true,
): Array<Combination<F>> {
  const candidates = allCombinations(factors)
    .filter(valid)
    .map((combination) => ({ combination, pairs: pairsOf(factors, combination) }));
  const uncovered = new Set(candidates.flatMap((c) => c.pairs).filter(needed));
  const runs: Array<Combination<F>> = [];
  while (uncovered.size > 0) {
    let best = candidates[0];
    let bestGain = -1;
    for (const candidate of candidates) {
      const gain = candidate.pairs.filter((p) => uncovered.has(p)).length;
      if (gain > bestGain) {
        best = candidate;
        bestGain = gain;
      }
    }
    if (!best || bestGain <= 0) break;
    runs.push(best.combination);
    for (const pair of best.pairs) uncovered.delete(pair);
  }
  return runs;
}
