// The SIMD column path against the definition the strategies were written with, restated here:
// sort each coordinate's column as a Float64Array (NaN last, -0 before +0), reduce it in float64,
// round once to f32. Every result must be the same float, bit for bit (any NaN for a NaN).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  columnClosestMeans,
  columnMedians,
  columnRangeMeans,
  reduceSortedColumns,
  type ColumnOptions,
} from './coordinate-wise.js';
import { forEachSortedBlock } from './column-sort.js';
import { updateAllocator } from './kernel-arena.js';

function definition(
  vectors: Float32Array[],
  length: number,
  reduce: (sorted: Float64Array) => number,
): Float32Array {
  const out = new Float32Array(length);
  for (let j = 0; j < length; j++) {
    const column = Float64Array.from(vectors, (v) => v[j] ?? NaN);
    column.sort();
    out[j] = reduce(column);
  }
  return out;
}

const median = (s: Float64Array): number => {
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};

const rangeMeanOf =
  (from: number, to: number) =>
  (s: Float64Array): number => {
    let sum = 0;
    for (let i = from; i < to; i++) sum += s[i] ?? NaN;
    return sum / (to - from);
  };

/**
 * Bulyan's second stage (El Mhamdi et al. 2018): the mean of the `count` values nearest the median,
 * taken one at a time from whichever side is nearer (the lower side on a tie), added as taken.
 * As the implementation has always done it, a lower side that has run out (distance +∞) still wins
 * a tie against a +∞ distance above and then counts as 0: only reachable with +∞ in a column.
 */
const closestOf =
  (count: number) =>
  (s: Float64Array): number => {
    const med = median(s);
    let right = s.findIndex((x) => !(x < med));
    if (right < 0) right = s.length;
    let left = right - 1;
    let sum = 0;
    for (let taken = 0; taken < count; taken++) {
      const below = left >= 0 ? med - (s[left] ?? NaN) : Infinity;
      const above = right < s.length ? (s[right] ?? NaN) - med : Infinity;
      sum += below <= above ? (left >= 0 ? (s[left] ?? NaN) : 0) : (s[right++] ?? NaN);
      if (below <= above) left--;
    }
    return sum / count;
  };

function expectSameFloats(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const [a, e] = [actual[i] ?? 0, expected[i] ?? 0];
    if (!(Number.isNaN(a) && Number.isNaN(e)) && !Object.is(a, e)) {
      throw new Error(`coordinate ${i}: got ${a}, the definition gives ${e}`);
    }
  }
}

/** Floats of every kind: NaN (also with the sign bit set), ±Inf, ±0, subnormals, and ties. */
const value = fc.oneof(
  { weight: 6, arbitrary: fc.float() },
  { weight: 2, arbitrary: fc.constantFrom(0, -0, 1, -1, 2.5) },
  { weight: 1, arbitrary: fc.constantFrom(Number.NaN, Infinity, -Infinity, 1e-45, -1e-45) },
);

const columns = fc
  .record({ n: fc.integer({ min: 1, max: 140 }), length: fc.integer({ min: 1, max: 1500 }), seed: fc.nat() })
  .chain(({ n, length, seed }) =>
    fc.array(value, { minLength: 16, maxLength: 16 }).map((pool) => {
      // Vectors built from a pool and a seed: cheap to generate at this size, still with every kind.
      let state = seed | 1;
      return Array.from({ length: n }, () => {
        const v = new Float32Array(length);
        const bits = new Uint32Array(v.buffer);
        for (let i = 0; i < length; i++) {
          state ^= state << 13;
          state ^= state >>> 17;
          state ^= state << 5;
          const r = (state >>> 0) % 64;
          if (r === 63)
            bits[i] = 0xffc00001; // a NaN with the sign bit set
          else v[i] = r < 16 ? (pool[r] ?? 0) : ((state >>> 0) / 2 ** 32 - 0.5) * 10 ** ((r % 9) - 4);
        }
        return v;
      });
    }),
  );

/** The same vectors placed as the aggregation job places them (one kernel arena). */
function inArena(vectors: Float32Array[]): Float32Array[] {
  const length = vectors[0]?.length ?? 0;
  const allocate = updateAllocator(vectors.length, length, 1 << 16);
  return vectors.map((v) => {
    const copy = allocate(length);
    copy.set(v);
    return copy;
  });
}

const placements: [string, (v: Float32Array[]) => Float32Array[], ColumnOptions][] = [
  ['SIMD, updates on the JS heap', (v) => v, { kernel: 'simd' }],
  ['SIMD, updates in a kernel arena', inArena, { kernel: 'simd' }],
  ['scalar', (v) => v, { kernel: 'scalar' }],
];

describe.each(placements)(
  'coordinate-wise reductions (%s) equal the definition bit for bit',
  (_, place, options) => {
    it('median', () => {
      fc.assert(
        fc.property(columns, (vectors) => {
          const length = vectors[0]?.length ?? 0;
          expectSameFloats(
            columnMedians(place(vectors), length, options),
            definition(vectors, length, median),
          );
        }),
        { numRuns: 40 },
      );
    });

    it('mean of a range of sorted positions (trimmed mean)', () => {
      fc.assert(
        fc.property(columns, fc.nat(), fc.nat(), (vectors, a, b) => {
          const [length, n] = [vectors[0]?.length ?? 0, vectors.length];
          const [from, to] = [Math.min(a % n, b % n), Math.max(a % n, b % n) + 1];
          expectSameFloats(
            columnRangeMeans(place(vectors), length, { from, to }, options),
            definition(vectors, length, rangeMeanOf(from, to)),
          );
        }),
        { numRuns: 40 },
      );
    });

    it('mean of the values closest to the median (Bulyan)', () => {
      fc.assert(
        fc.property(columns, fc.nat(), (vectors, c) => {
          const [length, n] = [vectors[0]?.length ?? 0, vectors.length];
          const count = 1 + (c % n);
          expectSameFloats(
            columnClosestMeans(place(vectors), length, count, options),
            definition(vectors, length, closestOf(count)),
          );
        }),
        { numRuns: 40 },
      );
    });

    it('any reduction of the sorted column', () => {
      fc.assert(
        fc.property(columns, (vectors) => {
          const length = vectors[0]?.length ?? 0;
          // Reads every position, so a single misplaced value shows.
          const weighted = (s: Float64Array): number => s.reduce((acc, x, i) => acc + x * (i + 1), 0);
          expectSameFloats(
            reduceSortedColumns(place(vectors), length, weighted, options),
            definition(vectors, length, weighted),
          );
        }),
        { numRuns: 30 },
      );
    });
  },
);

describe('coordinate-wise reductions on model-sized inputs', () => {
  it('100 updates of 70,001 values, in a kernel arena and on the heap', () => {
    let state = 7;
    const next = (): number => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 2 ** 32 - 0.5;
    };
    const length = 70_001;
    const vectors = Array.from({ length: 100 }, () => Float32Array.from({ length }, () => next() * 0.01));
    const expectedMedian = definition(vectors, length, median);
    const expectedTrimmed = definition(vectors, length, rangeMeanOf(10, 90));
    const expectedClosest = definition(vectors.slice(0, 80), length, closestOf(60));
    for (const placed of [vectors, inArena(vectors)]) {
      expectSameFloats(columnMedians(placed, length), expectedMedian);
      expectSameFloats(columnRangeMeans(placed, length, { from: 10, to: 90 }), expectedTrimmed);
      expectSameFloats(columnClosestMeans(placed.slice(0, 80), length, 60), expectedClosest);
    }
  });
});

describe('the vector path of the values closest to the median', () => {
  it('vouches for columns of one binade without ties (no group left to the definition), exactly', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 120 }),
        fc.integer({ min: 1, max: 300 }),
        fc.nat(),
        fc.nat(),
        (n, length, c, seed) => {
          let state = seed | 1;
          const vectors = Array.from({ length: n }, () =>
            Float32Array.from({ length }, () => {
              state = (Math.imul(state, 1103515245) + 12345) >>> 0;
              // [1, 2) or (-2, -1]: one exponent field, so every sum of them is exact in f64.
              return (state & 1 ? -1 : 1) * (1 + state / 2 ** 32);
            }),
          );
          const count = 1 + (c % n);
          const out = new Float32Array(length);
          let flagged = 0;
          forEachSortedBlock(vectors, length, { kind: 'closest', count }, (block) => {
            const results = new Float32Array(block.kernel.memory.buffer, block.out, block.count);
            out.set(results, block.start);
            // Groups of 4 real columns (a last, partial group also holds zero padding: a tie).
            const flags = new Int32Array(
              block.kernel.memory.buffer,
              block.flags,
              Math.floor(block.count / 4),
            );
            flagged += flags.filter((f) => f !== 0).length;
          });
          const expected = definition(vectors, length, closestOf(count));
          // Ties at the median (equal middle values) are the only reason left for a flag.
          const ties = Array.from({ length }, (_, j) => {
            const column = Float64Array.from(vectors, (v) => v[j] ?? NaN).sort();
            const mid = n >> 1;
            return column[mid - 1] === column[mid];
          }).some(Boolean);
          if (!ties) expect(flagged).toBe(0);
          expectSameFloats(out, expected);
        },
      ),
      { numRuns: 60 },
    );
  });
});
