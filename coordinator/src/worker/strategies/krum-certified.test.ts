// Krum, Multi-Krum and Bulyan (Gram matrix + certified decisions) against their definitions,
// restated here from the papers and Flower: pairwise squared distances summed coordinate by
// coordinate in f64, scores as the sum of the max(1, c − f − 2) smallest (ascending), ranking by
// score with ties to the lower index. Inputs include the hard cases for the Gram trick: updates
// sharing a large common part (cancellation), exact copies (colluders) and exact score ties.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { aggregateBulyan } from './bulyan.js';
import { aggregateKrum } from './krum.js';
import { PairDistances } from './krum-distances.js';
import { rankCandidates } from './krum-ranking.js';
import { seededRandom } from './test-random.js';
import type { WeightedUpdate } from './types.js';

function distance(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let k = 0; k < a.length; k++) {
    const d = (a[k] ?? NaN) - (b[k] ?? NaN);
    sum += d * d;
  }
  return sum;
}

function definitionRanking(vectors: Float32Array[], candidates: number[], f: number): number[] {
  const m = Math.max(1, candidates.length - f - 2);
  const scores = candidates.map((i) => {
    const row = candidates
      .filter((j) => j !== i)
      .map((j) =>
        distance(
          vectors[Math.min(i, j)] ?? new Float32Array(),
          vectors[Math.max(i, j)] ?? new Float32Array(),
        ),
      )
      .sort((a, b) => a - b);
    let score = 0;
    for (let k = 0; k < Math.min(m, row.length); k++) score += row[k] ?? NaN;
    return score;
  });
  return candidates
    .map((index, position) => ({ index, score: scores[position] ?? NaN }))
    .sort((a, b) => a.score - b.score || a.index - b.index)
    .map((e) => e.index);
}

type Kind = 'general' | 'common-part' | 'copies' | 'integers';

function makeUpdates(kind: Kind, n: number, length: number, seed: number): WeightedUpdate[] {
  const random = seededRandom(seed);
  const common = Float32Array.from({ length }, () => (random() - 0.5) * 2000);
  const updates = Array.from({ length: n }, () => {
    const values = Float32Array.from({ length }, () => {
      switch (kind) {
        case 'general':
          return random() - 0.5;
        case 'common-part':
          return 0;
        case 'copies':
          return random() - 0.5;
        case 'integers':
          return Math.floor(random() * 3);
      }
    });
    if (kind === 'common-part') {
      // ‖common‖² is ~10¹² times the squared distances: the Gram form cancels almost every digit.
      for (let k = 0; k < length; k++) values[k] = (common[k] ?? 0) + (random() - 0.5) * 0.002;
    }
    return { values, weight: 1 + Math.floor(random() * 9) };
  });
  if (kind === 'copies') {
    for (let k = 0; k < Math.floor(n / 3); k++) {
      const source = updates[0];
      updates[n - 1 - k] = { values: (source?.values ?? new Float32Array(length)).slice(), weight: 2 };
    }
  }
  return updates;
}

/** Updates of any kind: between `minCount` and `maxCount` of them, 1 to `maxLength` coordinates. */
function updatesOfAnyKind(
  minCount: number,
  maxCount: number,
  maxLength: number,
): fc.Arbitrary<WeightedUpdate[]> {
  return fc
    .tuple(
      fc.constantFrom<Kind>('general', 'common-part', 'copies', 'integers'),
      fc.integer({ min: minCount, max: maxCount }),
      fc.integer({ min: 1, max: maxLength }),
      fc.nat(),
    )
    .map(([kind, n, length, seed]) => makeUpdates(kind, n, length, seed));
}

function expectSameBits(actual: Float32Array, expected: Float32Array): void {
  expect(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength)).toEqual(
    Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength),
  );
}

function weightedMean(updates: WeightedUpdate[], kept: number[], uniform: boolean): Float32Array {
  const length = updates[0]?.values.length ?? 0;
  const acc = new Float64Array(length);
  let total = 0;
  for (const index of kept) {
    const u = updates[index];
    if (u === undefined) continue;
    const w = uniform ? 1 : u.weight;
    total += w;
    for (let k = 0; k < length; k++) acc[k] = (acc[k] ?? 0) + w * (u.values[k] ?? NaN);
  }
  return Float32Array.from(acc, (x) => x / total);
}

describe('Krum on a Gram matrix takes the definition’s decisions', () => {
  it('Krum and Multi-Krum: same selection, same order of the kept, same aggregate bit for bit', () => {
    fc.assert(
      fc.property(
        updatesOfAnyKind(1, 30, 700),
        fc.nat(),
        fc.nat(),
        fc.boolean(),
        (updates, fRaw, keepRaw, uniform) => {
          const n = updates.length;
          const f = fRaw % Math.max(1, Math.floor(n / 2));
          const keep = 1 + (keepRaw % n);
          const vectors = updates.map((u) => u.values);
          const order = definitionRanking(
            vectors,
            vectors.map((_, i) => i),
            f,
          ).slice(0, keep);
          const result = aggregateKrum(updates, {
            byzantine: f,
            keep,
            weighting: uniform ? 'uniform' : 'weighted',
          });
          expect(result.selected).toEqual([...order].sort((a, b) => a - b));
          const expected =
            keep === 1
              ? (updates[order[0] ?? 0]?.values ?? new Float32Array())
              : weightedMean(updates, order, uniform);
          expectSameBits(result.values, expected);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('Bulyan: the same θ updates in the same order as repeated definition Krum', () => {
    fc.assert(
      fc.property(updatesOfAnyKind(3, 30, 400), fc.nat(), (updates, fRaw) => {
        const n = updates.length;
        const f = fRaw % (Math.floor((n - 3) / 4) + 1);
        const vectors = updates.map((u) => u.values);
        let remaining = vectors.map((_, i) => i);
        const order: number[] = [];
        while (order.length < n - 2 * f) {
          const best = definitionRanking(vectors, remaining, f)[0] ?? -1;
          order.push(best);
          remaining = remaining.filter((i) => i !== best);
        }
        const result = aggregateBulyan(updates, { byzantine: f });
        expect(result.details.selectionOrder).toEqual(order);
      }),
      { numRuns: 100 },
    );
  });
});

/** Every interval holds the definition's distance; copies are exactly 0; nothing was computed. */
function expectContained(d: PairDistances, vectors: readonly Float32Array[]): void {
  for (let i = 0; i < vectors.length; i++) {
    for (let j = i + 1; j < vectors.length; j++) {
      const exact = distance(vectors[i] ?? new Float32Array(), vectors[j] ?? new Float32Array());
      expect(d.lower(i, j)).toBeLessThanOrEqual(exact);
      expect(d.upper(i, j)).toBeGreaterThanOrEqual(exact);
      if (d.isTwin(i, j)) expect([d.lower(i, j), d.upper(i, j), exact]).toEqual([0, 0, 0]);
    }
  }
  expect(d.computed).toBe(0);
}

describe('certified distance intervals', () => {
  it('contain the definition’s distance, and copies are exactly 0 with no computation', () => {
    fc.assert(
      fc.property(updatesOfAnyKind(2, 20, 500), (updates) => {
        const vectors = updates.map((u) => u.values);
        for (const precision of ['f64', 'f32'] as const)
          expectContained(new PairDistances(vectors, precision), vectors);
      }),
      { numRuns: 100 },
    );
  });

  it("contain it with f32 tiles at the ends of f32's range: products below its normal range, and past its top", () => {
    const random = seededRandom(20);
    // 700 values: two whole blocks of 256 and a partial one; 7 updates: a partial tile.
    // 2⁷⁰: the squares overflow f32, so the f64 Gram matrix is taken instead.
    for (const scale of [2 ** -140, 2 ** -75, 1, 2 ** 50, 2 ** 70]) {
      const vectors = Array.from({ length: 7 }, () =>
        Float32Array.from({ length: 700 }, () => scale * (random() - 0.5)),
      );
      vectors[6] = vectors[0]?.slice() ?? new Float32Array(700);
      expectContained(new PairDistances(vectors, 'f32'), vectors);
    }
    // Mixed: one coordinate of an ordinary size, the rest far below f32's normal range, so the
    // products' absolute losses are all that separates two updates.
    const mixed = Array.from({ length: 5 }, (_, i) =>
      Float32Array.from({ length: 700 }, (_, k) => (k === 0 ? 1 : 2 ** -100 * (i + 1) * ((k % 7) - 3))),
    );
    expectContained(new PairDistances(mixed, 'f32'), mixed);
  });

  it('settles near-ties by computing the definition’s distances, and only then', () => {
    // Points 0, 1, 2, 3, 10 with f = 1 (2 neighbours): scores 5, 2, 2, 5, 113 (Blanchard et al.'s
    // definition by hand). 1 and 2 tie exactly, so only the definition's distances can order them.
    const tied = [0, 1, 2, 3, 10].map((x) => Float32Array.of(x));
    const d = new PairDistances(tied);
    const all = tied.map((_, i) => i);
    expect(d.computed).toBe(0);
    expect(rankCandidates(d, all, { f: 1, keep: 2 }).order.slice(0, 2)).toEqual([1, 2]);
    expect(d.computed).toBeGreaterThan(0);
    // Updates in general position have no near-ties (intervals ~1e-15 of a score wide here). With
    // one neighbour (m = 1) a mutual nearest pair always ties, so m = 2 here.
    const general = makeUpdates('general', 20, 300, 4).map((u) => u.values);
    const generalDistances = new PairDistances(general);
    rankCandidates(
      generalDistances,
      general.map((_, i) => i),
      { f: 16, keep: 20 },
    );
    expect(generalDistances.computed).toBe(0);
  });
});
