/**
 * WebAssembly SIMD kernels for the Gram matrix G = X·Xᵀ of the updates (Krum, Multi-Krum, Bulyan):
 * the pairwise squared distances are then ‖a‖² + ‖b‖² − 2⟨a, b⟩ (krum-distances.ts). A block of
 * coordinates of every update is widened to f64 once (`promoteRows`), then every tile of row pairs
 * accumulates its inner products over the block (`gramTiles`) while the block is in cache, so the
 * update matrix is read once however many pairs there are.
 *
 * Products of two f32 values are exact in f64 (24 + 24 bits of significand); each pair's sum is
 * formed in the same order whatever tile it falls in, so two updates that are equal bit for bit get
 * equal rows of G and a distance of exactly 0.
 */
import { HIGH_HALF } from './column-kernels.js';
import {
  I32,
  V128,
  forEachTableRow,
  op,
  setSum,
  simdOp,
  stepLoop,
  wasmFunction,
  type WasmFunction,
} from './wasm-encoding.js';

/** Rows per side of a tile: a tile holds TILE_A × TILE_B pairs, one f64x2 sum chain each. */
export const TILE_A = 4;
export const TILE_B = 2;
/** i32 fields of one tile in the tile table: its a-rows' and b-rows' offsets, then one G address per pair. */
export const TILE_FIELDS = 2 + TILE_A * TILE_B;
/** Bytes from one promoted row to the next: GRAM_LANES f64 and a cache line of padding. */
export const GRAM_LANES = 256;
export const GRAM_STRIDE = GRAM_LANES * 8 + 64;
/** The same for rows kept as f32 (`gramTilesF32`). */
export const GRAM_STRIDE_F32 = GRAM_LANES * 4 + 64;

/**
 * `(rows, n, srcOffset, dst, count, dstStride)`: for each of the n row addresses (i32) at `rows`,
 * widens `count` f32 (a multiple of 4) from `address + srcOffset` to f64 at `dst + r · dstStride`
 * (`promoteRows`), or copies them as they are (`copyRows`, for the f32 tiles).
 */
function stageRows(widen: boolean): WasmFunction {
  const store = (v: number[], offset: number): number[] => [...v, ...simdOp.v128Store(offset)];
  return wasmFunction(
    widen ? 'promoteRows' : 'copyRows',
    { rows: I32, n: I32, srcOffset: I32, dst: I32, count: I32, dstStride: I32 },
    { rowsEnd: I32, src: I32, srcEnd: I32, d: I32, x: V128 },
    (l) =>
      forEachTableRow(l, [
        ...op.localGet(l.count),
        ...op.i32Const(2),
        ...op.i32Shl,
        ...op.localGet(l.src),
        ...op.i32Add,
        ...op.localSet(l.srcEnd),
        ...stepLoop(l.src, l.srcEnd, 16, [
          ...op.localGet(l.src),
          ...simdOp.v128Load(0),
          ...op.localSet(l.x),
          ...(widen
            ? [
                ...store([...op.localGet(l.d), ...op.localGet(l.x), ...simdOp.f64x2PromoteLowF32x4], 0),
                ...store(
                  [
                    ...op.localGet(l.d),
                    ...op.localGet(l.x),
                    ...op.localGet(l.x),
                    ...simdOp.i8x16Shuffle(HIGH_HALF),
                    ...simdOp.f64x2PromoteLowF32x4,
                  ],
                  16,
                ),
                ...setSum(l.d, l.d, { value: 32 }),
              ]
            : [...store([...op.localGet(l.d), ...op.localGet(l.x)], 0), ...setSum(l.d, l.d, { value: 16 })]),
        ]),
      ]),
  );
}

/**
 * `(base, tiles, tileCount, bytes)`: for each tile in the table at `tiles` (TILE_FIELDS i32 each:
 * the byte offset from `base` of the tile's first a-row and of its first b-row, then the byte
 * address of G for each pair, a-major), adds Σ a[k]·b[k] over the first `bytes` (a multiple of 32)
 * of each pair of rows to that pair's G entry (f64). A tile's rows are consecutive rows of the
 * block, `stride` bytes apart.
 * - `gramTiles`, rows of f64 (GRAM_STRIDE apart): lane 0 of a pair's f64x2 sums the even
 *   coordinates, lane 1 the odd ones, each in order; G gets (lane 0 + lane 1).
 * - `gramTilesF32`, rows of f32 (GRAM_STRIDE_F32 apart): lane q of a pair's f32x4 sums the
 *   coordinates ≡ q mod 4 in f32, in order; G gets ((lane 0 + lane 2) + (lane 1 + lane 3)) in f64.
 *   Twice the products per instruction, for bounds that are 10⁷ times wider (gram-matrix.ts).
 */
function gramTiles(f32: boolean): WasmFunction {
  const stride = f32 ? GRAM_STRIDE_F32 : GRAM_STRIDE;
  const pairs = TILE_A * TILE_B;
  const va = Array.from({ length: TILE_A }, (_, i) => `va${i}`);
  const vb = Array.from({ length: TILE_B }, (_, j) => `vb${j}`);
  const sums = Array.from({ length: pairs }, (_, q) => `s${q}`);
  const locals: Record<string, number> = { tilesEnd: I32, pa: I32, pb: I32, paEnd: I32, flushed: V128 };
  for (const name of [...va, ...vb, ...sums]) locals[name] = V128;
  const name = f32 ? 'gramTilesF32' : 'gramTiles';
  return wasmFunction(name, { base: I32, tiles: I32, tileCount: I32, bytes: I32 }, locals, (l) => {
    const at = (name: string | undefined): number => {
      const index = l[name ?? ''];
      if (index === undefined) throw new Error(`gramTiles has no local ${name}`);
      return index;
    };
    // Rows of one side are `stride` apart: constant offsets from that side's pointer.
    const load = (pointer: string, row: number, into: string | undefined): number[] => [
      ...op.localGet(at(pointer)),
      ...simdOp.v128Load(row * stride),
      ...op.localSet(at(into)),
    ];
    const step = [
      ...va.flatMap((name, i) => load('pa', i, name)),
      ...vb.flatMap((name, j) => load('pb', j, name)),
      ...sums.flatMap((name, q) => [
        ...op.localGet(at(name)),
        ...op.localGet(at(va[Math.floor(q / TILE_B)])),
        ...op.localGet(at(vb[q % TILE_B])),
        ...(f32 ? [...simdOp.f32x4Mul, ...simdOp.f32x4Add] : [...simdOp.f64x2Mul, ...simdOp.f64x2Add]),
        ...op.localSet(at(name)),
      ]),
      ...setSum(at('pb'), at('pb'), { value: 16 }),
    ];
    const start = (field: number, into: string): number[] => [
      ...op.localGet(at('base')),
      ...op.localGet(at('tiles')),
      ...op.i32Load(4 * field),
      ...op.i32Add,
      ...op.localSet(at(into)),
    ];
    // The pair's sum as an f64x2: itself, or its four f32 lanes widened, (lane 0 + lane 2, lane 1 + lane 3).
    const asF64x2 = (name: string): number[] =>
      f32
        ? [
            ...op.localGet(at(name)),
            ...simdOp.f64x2PromoteLowF32x4,
            ...op.localGet(at(name)),
            ...op.localGet(at(name)),
            ...simdOp.i8x16Shuffle(HIGH_HALF),
            ...simdOp.f64x2PromoteLowF32x4,
            ...simdOp.f64x2Add,
          ]
        : op.localGet(at(name));
    const flush = sums.flatMap((name, q) => [
      // G[pair] += lane 0 + lane 1
      ...op.localGet(at('tiles')),
      ...op.i32Load(4 * (2 + q)),
      ...op.localGet(at('tiles')),
      ...op.i32Load(4 * (2 + q)),
      ...op.f64Load(0),
      ...asF64x2(name),
      ...op.localSet(at('flushed')),
      ...op.localGet(at('flushed')),
      ...simdOp.f64x2ExtractLane(0),
      ...op.localGet(at('flushed')),
      ...simdOp.f64x2ExtractLane(1),
      ...op.f64Add,
      ...op.f64Add,
      ...op.f64Store(0),
    ]);
    return [
      ...op.localGet(at('tileCount')),
      ...op.i32Const(4 * TILE_FIELDS),
      ...op.i32Mul,
      ...op.localGet(at('tiles')),
      ...op.i32Add,
      ...op.localSet(at('tilesEnd')),
      ...stepLoop(at('tiles'), at('tilesEnd'), 4 * TILE_FIELDS, [
        // +0 in every lane (both splats give all-zero bits).
        ...sums.flatMap((name) => [...op.f64Const(0), ...simdOp.f64x2Splat, ...op.localSet(at(name))]),
        ...start(0, 'pa'),
        ...start(1, 'pb'),
        ...setSum(at('paEnd'), at('pa'), at('bytes')),
        ...stepLoop(at('pa'), at('paEnd'), 16, step),
        ...flush,
      ]),
    ];
  });
}

/** The Gram kernels, in the order their exports are listed in `GramKernel`. */
export function gramFunctions(): WasmFunction[] {
  return [stageRows(true), gramTiles(false), stageRows(false), gramTiles(true)];
}

/** Exports of the Gram kernels (pointers and sizes in bytes of the instance's memory). */
export interface GramKernel {
  promoteRows(
    rows: number,
    n: number,
    srcOffset: number,
    dst: number,
    count: number,
    dstStride: number,
  ): void;
  gramTiles(base: number, tiles: number, tileCount: number, bytes: number): void;
  copyRows(rows: number, n: number, srcOffset: number, dst: number, count: number, dstStride: number): void;
  gramTilesF32(base: number, tiles: number, tileCount: number, bytes: number): void;
}
