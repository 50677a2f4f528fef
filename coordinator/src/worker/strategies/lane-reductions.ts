/**
 * What the generated network kernel does with each group of 4 sorted columns once the block is
 * sorted (network-kernel.ts), while its rows are still in cache. Every reduction performs the float64
 * operations of its scalar definition (coordinate-wise.ts, bulyan.ts) in the same order, so its
 * results are the definition's bit for bit.
 */
import { f64Splat, flipKeys, JOIN_LOW_HALVES, promoteHalf } from './column-kernels.js';
import { op, simdOp } from './wasm-encoding.js';

/**
 * - `sorted`: the keys stay sorted on their rows (only positions [from, to) are certain);
 * - `pick`: the float of sorted row `row` (an odd count's median);
 * - `midpoint`: (row `row - 1` + row `row`) / 2 in f64, rounded to f32 (an even count's median);
 * - `mean`: rows [from, to) added in row order into an f64 from +0, divided by `to - from`
 *   (`rangeMean`, the trimmed mean);
 * - `closest`: the mean of the `count` values nearest the median (`meanClosestToMedian`, Bulyan),
 *   with a flag per group where the vector path cannot vouch for the definition's result (see
 *   `closestCode`), which the caller then computes with the definition.
 * Results (f32) go to `out`, 16 bytes per group; flags (i32, 1 = recompute) to `flags`.
 */
export type LaneReduction =
  | { kind: 'sorted'; from: number; to: number }
  | { kind: 'pick'; row: number }
  | { kind: 'midpoint'; row: number }
  | { kind: 'mean'; from: number; to: number }
  | { kind: 'closest'; count: number };

/** Sorted positions a reduction reads of n (the network is pruned to them). */
export function positionsOf(reduction: LaneReduction, n: number): { from: number; to: number } {
  switch (reduction.kind) {
    case 'sorted':
    case 'mean':
      return { from: reduction.from, to: reduction.to };
    case 'pick':
      return { from: reduction.row, to: reduction.row + 1 };
    case 'midpoint':
      return { from: reduction.row - 1, to: reduction.row + 1 };
    case 'closest':
      return { from: 0, to: n };
  }
}

/** v128 scratch locals a reduction may use. */
export const SCRATCH_V128 = 16;

/** Where the reduction code finds things: locals (by index) and the row layout. */
export interface ReductionContext {
  /** i32 local: byte address of the group's row 0. */
  base: number;
  /** i32 local: byte address of the group's 16-byte result. */
  out: number;
  /** i32 local: byte address of the group's i32 flag. */
  flags: number;
  /** v128 scratch local k (k < SCRATCH_V128). */
  v: (k: number) => number;
  strideBytes: number;
  /** Rows (values per column). */
  n: number;
}

const splatI32 = (x: number): number[] => simdOp.v128ConstI32([x, x, x, x]);

/** Code for one group of 4 lanes: the reduction's result (and flag) for it. */
export function reductionCode(reduction: LaneReduction, ctx: ReductionContext): number[] {
  const [x, a, b, low, high] = [ctx.v(0), ctx.v(1), ctx.v(2), ctx.v(3), ctx.v(4)];
  /** The floats of sorted row `row` into local `into`. */
  const load = (row: number, into: number): number[] => [
    ...op.localGet(ctx.base),
    ...simdOp.v128Load(row * ctx.strideBytes),
    ...op.localSet(x),
    ...flipKeys(x),
    ...op.localSet(into),
  ];
  const divide = (sum: number[], divisor: number): number[] => [
    ...sum,
    ...f64Splat(divisor),
    ...simdOp.f64x2Div,
    ...simdOp.f32x4DemoteF64x2Zero,
  ];
  const store = (lowHalf: number[], highHalf: number[]): number[] => [
    ...op.localGet(ctx.out),
    ...lowHalf,
    ...highHalf,
    ...simdOp.i8x16Shuffle(JOIN_LOW_HALVES),
    ...simdOp.v128Store(0),
  ];
  switch (reduction.kind) {
    case 'sorted':
      return [];
    case 'pick':
      return [...load(reduction.row, a), ...op.localGet(ctx.out), ...op.localGet(a), ...simdOp.v128Store(0)];
    case 'midpoint': {
      const sum = (half: boolean): number[] => [
        ...promoteHalf(a, half),
        ...promoteHalf(b, half),
        ...simdOp.f64x2Add,
      ];
      return [
        ...load(reduction.row - 1, a),
        ...load(reduction.row, b),
        ...store(divide(sum(false), 2), divide(sum(true), 2)),
      ];
    }
    case 'mean': {
      const code = [...f64Splat(0), ...op.localSet(low), ...f64Splat(0), ...op.localSet(high)];
      for (let row = reduction.from; row < reduction.to; row++) {
        code.push(...load(row, a));
        for (const [sum, half] of [
          [low, false],
          [high, true],
        ] as const) {
          code.push(...op.localGet(sum), ...promoteHalf(a, half), ...simdOp.f64x2Add, ...op.localSet(sum));
        }
      }
      const divisor = reduction.to - reduction.from;
      return [...code, ...store(divide(op.localGet(low), divisor), divide(op.localGet(high), divisor))];
    }
    case 'closest':
      return closestCode(reduction.count, ctx, { load, divide, store });
  }
}

/**
 * `meanClosestToMedian(sorted, count)` for 4 columns at once. The definition grows a window from
 * the median one value at a time, taking the nearer side (the lower one on a tie), and adds the
 * values in the order taken. Here, with r0 the first index whose value is not below the median:
 *
 * 1. Which values. The sides are two sorted lists of distances to the median, merged with ties to
 *    the left, so the k-th value below (row r0 − k) is taken exactly when
 *    `median − s[r0 − k] <= s[r0 + count − k] − median` (the right side counted as +∞ past the
 *    end), and then row r0 + count − k above is not; rows r0 … r0 + count − K − 1 (K = min(count,
 *    r0)) are always taken. Those are the definition's f64 subtractions and comparison, so each
 *    comparison mask selects the same values.
 * 2. Their sum. The selected values are added in an order of their own. It gives the definition's
 *    f64 when no addition rounds, which holds when every partial sum is an exact multiple of the
 *    smallest ulp among the values and below 2⁵³ of it: with E the f32 exponent fields (subnormals
 *    as 1), when max E − min E ≤ 29 − ⌈log2 count⌉ over the rows any window can reach.
 *
 * A group is flagged for the definition when a lane has a non-finite value, a tie at the median
 * (r0 not where it is without ties), or values spread too widely for (2).
 */
function closestCode(
  count: number,
  ctx: ReductionContext,
  helpers: {
    load: (row: number, into: number) => number[];
    divide: (sum: number[], divisor: number) => number[];
    store: (lowHalf: number[], highHalf: number[]) => number[];
  },
): number[] {
  const { load, divide, store } = helpers;
  const { n, v } = ctx;
  const r0 = n >> 1;
  const reach = Math.min(count, r0);
  const [first, last] = [r0 - reach, Math.min(n, r0 + count)];
  const [a, b, ok, minBits, abs, one, t] = [v(1), v(2), v(3), v(4), v(5), v(6), v(11)];
  const median = [v(7), v(8)] as const;
  const sum = [v(9), v(10)] as const;
  /** One half of rows a and b, promoted once. */
  const [wideA, wideB] = [v(12), v(13)];
  const halves = [0, 1] as const;
  const code: number[] = [];
  const andOk = (mask: number[]): void => {
    code.push(...op.localGet(ok), ...mask, ...simdOp.v128And, ...op.localSet(ok));
  };
  const absBits = (local: number): number[] => [
    ...op.localGet(local),
    ...op.localGet(abs),
    ...simdOp.v128And,
  ];
  // minBits = the smallest |bits| − 1, unsigned: a zero (|bits| − 1 = 0xffffffff) never wins.
  const track = (local: number): void => {
    code.push(...op.localGet(minBits), ...absBits(local), ...op.localGet(one), ...simdOp.i32x4Sub);
    code.push(...simdOp.i32x4MinU, ...op.localSet(minBits));
  };
  const addTo = (h: 0 | 1, value: number[]): void => {
    code.push(...op.localGet(sum[h]), ...value, ...simdOp.f64x2Add, ...op.localSet(sum[h]));
  };
  code.push(...splatI32(0x7fffffff), ...op.localSet(abs));
  code.push(...splatI32(1), ...op.localSet(one), ...splatI32(-1), ...op.localSet(minBits));
  for (const h of halves) code.push(...f64Splat(0), ...op.localSet(sum[h]));
  // Median in f64 (sortedMedian); the column's ends finite; nothing below r0 equal to the median.
  code.push(...load(r0, b));
  if (n % 2 === 1) {
    for (const h of halves) code.push(...promoteHalf(b, h === 1), ...op.localSet(median[h]));
  } else {
    code.push(...load(r0 - 1, a));
    for (const h of halves) {
      code.push(...promoteHalf(a, h === 1), ...promoteHalf(b, h === 1), ...simdOp.f64x2Add);
      code.push(...f64Splat(2), ...simdOp.f64x2Div, ...op.localSet(median[h]));
    }
  }
  // Rows always taken.
  for (let row = r0; row < r0 + count - reach; row++) {
    code.push(...load(row, a));
    track(a);
    for (const h of halves) addTo(h, promoteHalf(a, h === 1));
  }
  // Row r0 − k below or row r0 + count − k above, whichever the comparison picks.
  for (let k = 1; k <= reach; k++) {
    const above = r0 + count - k;
    code.push(...load(r0 - k, a));
    track(a);
    if (above >= n) {
      for (const h of halves) addTo(h, promoteHalf(a, h === 1));
      continue;
    }
    code.push(...load(above, b));
    track(b);
    for (const h of halves) {
      code.push(
        ...promoteHalf(a, h === 1),
        ...op.localSet(wideA),
        ...promoteHalf(b, h === 1),
        ...op.localSet(wideB),
      );
      code.push(...op.localGet(median[h]), ...op.localGet(wideA), ...simdOp.f64x2Sub);
      code.push(...op.localGet(wideB), ...op.localGet(median[h]), ...simdOp.f64x2Sub);
      code.push(...simdOp.f64x2Le, ...op.localSet(t));
      addTo(h, [...op.localGet(wideA), ...op.localGet(t), ...simdOp.v128And]);
      addTo(h, [...op.localGet(wideB), ...op.localGet(t), ...simdOp.v128AndNot]);
    }
  }
  // Exponent fields: the largest |value| is at an end of the sorted rows reached, the smallest
  // nonzero one is minBits; subnormals (field 0) count as field 1.
  const field = (bits: number[]): number[] => [
    ...bits,
    ...op.i32Const(23),
    ...simdOp.i32x4ShrU,
    ...splatI32(1),
    ...simdOp.i32x4MaxS,
  ];
  // The checks, last, so `ok` is not live through the loops above.
  code.push(...splatI32(-1), ...op.localSet(ok));
  for (const row of [0, n - 1]) {
    code.push(...load(row, a));
    andOk([...absBits(a), ...splatI32(0x7f800000), ...simdOp.i32x4LtS]);
  }
  code.push(...load(r0 - 1, a));
  for (const h of halves) andOk([...promoteHalf(a, h === 1), ...op.localGet(median[h]), ...simdOp.f64x2Lt]);
  code.push(...load(first, a), ...load(last - 1, b));
  andOk([
    ...field([...absBits(a), ...absBits(b), ...simdOp.i32x4MaxS]),
    ...field([...op.localGet(minBits), ...op.localGet(one), ...simdOp.i32x4Add]),
    ...simdOp.i32x4Sub,
    ...splatI32(29 - Math.ceil(Math.log2(count))),
    ...simdOp.i32x4LeS,
  ]);
  code.push(...op.localGet(ctx.flags), ...op.i32Const(1), ...op.localGet(ok), ...simdOp.i32x4AllTrue);
  code.push(...op.i32Sub, ...op.i32Store(0));
  code.push(...store(divide(op.localGet(sum[0]), count), divide(op.localGet(sum[1]), count)));
  return code;
}
