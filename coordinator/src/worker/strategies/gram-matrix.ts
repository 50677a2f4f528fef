// The Gram matrix G[i][j] = ⟨x_i, x_j⟩ of n updates in one pass over them: GRAM_LANES coordinates
// of every update at a time are widened to f64 (in L2), and every tile of TILE_A × TILE_B pairs
// adds its inner products over them (gram-kernels.ts). Pairs are only formed for i ≤ j.
import { f64At } from '@flotilla/protocol';
import { GRAM_LANES, GRAM_STRIDE, GRAM_STRIDE_F32, TILE_A, TILE_B, TILE_FIELDS } from './gram-kernels.js';
import { floatBytes, placeBeside, region } from './kernel-placement.js';

/** Coordinates of the updates staged per copy when they are not in the kernel's memory. */
const STAGE_LANES = 16 * GRAM_LANES;

export interface GramMatrix {
  n: number;
  /** G, n × n, row-major, symmetric. */
  values: Float64Array;
  /**
   * e such that every |G̃_ij − G_ij| ≤ e · Σ_k |x_ik x_jk| + `absoluteError` (krum-distances.ts).
   * - f64: γ_d (u = 2⁻⁵³), d the most rounding steps of an entry: each lane of a pair sums
   *   GRAM_LANES / 2 products per block in order, the two lanes are added, and that is added to the
   *   entry once per block. Every product of two f32 is exact in f64.
   * - f32: γ_m (u = 2⁻²⁴) for a lane's block sum of m = GRAM_LANES / 4 rounded products (Higham,
   *   §3.1), plus twice the f64 γ of the adds after it (the lanes widened exactly, 2 adds, then one
   *   per block), which also covers the f64 rounding of the f32 part's error.
   */
  entryError: number;
  /**
   * f32 only: products below f32's normal range lose up to 2⁻¹⁵⁰ each, not a relative part (twice that
   * after the adds that follow, which stay within a factor 1 + γ_m ≤ 2). An overflow shows as an
   * entry that is not finite (PairDistances then takes the f64 matrix). 0 for f64.
   */
  absoluteError: number;
}

/** γ_k = k·u / (1 − k·u) for unit roundoff `u`. */
export function gamma(k: number, u = 2 ** -53): number {
  return (k * u) / (1 - k * u);
}

/** Arithmetic of the tiles: f64 (exact products; Krum, Bulyan) or f32 (twice as fast; the screen). */
export type GramPrecision = 'f64' | 'f32';

/** Tile table: a- and b-row offsets, then the G address of each pair (see `gramTiles`). */
function tileTable(padded: number, gramAddress: number, stride: number): number[] {
  const table: number[] = [];
  for (let a = 0; a < padded; a += TILE_A) {
    // b-groups that reach row a or beyond: every pair i ≤ j lands in some tile.
    for (let b = a - (a % TILE_B); b < padded; b += TILE_B) {
      table.push(a * stride, b * stride);
      for (let i = a; i < a + TILE_A; i++) {
        for (let j = b; j < b + TILE_B; j++) table.push(gramAddress + 8 * (i * padded + j));
      }
    }
  }
  return table;
}

/**
 * G of `vectors` (each of `length` f32). Updates sharing one kernel arena with room are read in
 * place; others are copied in STAGE_LANES coordinates at a time. Throws INTERNAL without
 * WebAssembly SIMD.
 */
export function gramMatrix(
  vectors: readonly Float32Array[],
  length: number,
  precision: GramPrecision = 'f64',
): GramMatrix {
  const f32 = precision === 'f32';
  const stride = f32 ? GRAM_STRIDE_F32 : GRAM_STRIDE;
  const n = vectors.length;
  const padded = Math.ceil(n / TILE_A) * TILE_A;
  const tileFloats = TILE_FIELDS * (padded / TILE_A) * (padded / TILE_B);
  // In place, only the last partial block is copied; otherwise every block goes through staging.
  const stageLanes = (inPlace: boolean): number =>
    inPlace ? GRAM_LANES : Math.min(STAGE_LANES, Math.ceil(length / 4) * 4);
  const placement = placeBeside(
    vectors,
    (inPlace) =>
      floatBytes(n) +
      floatBytes((padded * stride) / 4) +
      floatBytes(2 * padded * padded) +
      floatBytes(tileFloats) +
      floatBytes(n * stageLanes(inPlace)),
  );
  const { arena } = placement;
  try {
    const { kernel } = arena;
    const rows = region(arena, n);
    const rowTable = new Int32Array(rows.buffer, rows.byteOffset, n);
    // Rows past n stay zero: their pairs add nothing and are never read.
    const promoted = region(arena, (padded * stride) / 4).byteOffset;
    const gram = region(arena, 2 * padded * padded);
    const tiles = tileTable(padded, gram.byteOffset, stride);
    const tileView = region(arena, tiles.length);
    new Int32Array(tileView.buffer, tileView.byteOffset, tiles.length).set(tiles);
    const tileCount = tiles.length / TILE_FIELDS;
    const slot = stageLanes(placement.inPlace);
    const stage = region(arena, n * slot);
    const block = (start: number, count: number): void => {
      // Whole f64x2 pairs of promoted f32x4: count rounded up to 4 (the padding is zero).
      const floats = Math.ceil(count / 4) * 4;
      if (f32) {
        kernel.copyRows(rows.byteOffset, n, 4 * start, promoted, floats, stride);
        kernel.gramTilesF32(promoted, tileView.byteOffset, tileCount, 4 * floats);
      } else {
        kernel.promoteRows(rows.byteOffset, n, 4 * start, promoted, floats, stride);
        kernel.gramTiles(promoted, tileView.byteOffset, tileCount, 8 * floats);
      }
    };
    const staged = (from: number, to: number): void => {
      vectors.forEach((v, r) => {
        stage.set(v.subarray(from, to), r * slot);
        stage.fill(0, r * slot + to - from, (r + 1) * slot);
        rowTable[r] = stage.byteOffset + 4 * (r * slot - from);
      });
      for (let start = from; start < to; start += GRAM_LANES) block(start, Math.min(GRAM_LANES, to - start));
    };
    const fullEnd = placement.inPlace ? length - (length % GRAM_LANES) : 0;
    vectors.forEach((v, r) => (rowTable[r] = v.byteOffset));
    for (let start = 0; start < fullEnd; start += GRAM_LANES) block(start, GRAM_LANES);
    for (let from = fullEnd; from < length; from += slot) staged(from, Math.min(length, from + slot));
    const values = new Float64Array(n * n);
    const g = new Float64Array(gram.buffer, gram.byteOffset, padded * padded);
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        const x = f64At(g, i * padded + j);
        values[i * n + j] = x;
        values[j * n + i] = x;
      }
    }
    const blocks = Math.ceil(length / GRAM_LANES);
    return f32
      ? {
          n,
          values,
          entryError: gamma(GRAM_LANES / 4, 2 ** -24) + 2 * gamma(3 + blocks),
          absoluteError: length * 2 ** -149,
        }
      : { n, values, entryError: gamma(GRAM_LANES / 2 + 1 + blocks), absoluteError: 0 };
  } finally {
    placement.release();
  }
}
