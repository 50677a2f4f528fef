// Sorts every coordinate's column of values (one per update), a block of coordinates at a time: the
// block's slice of each update is read once, in one sequential run per update, into n rows of keys
// that stay in L2 (column-kernels.ts), and a comparator network generated for n sorts all of the
// block's columns side by side, four per SIMD register (network-kernel.ts).
import { floatBytes, placeBeside, region } from './kernel-placement.js';
import { positionsOf, type LaneReduction } from './lane-reductions.js';
import { networkKernel } from './network-kernel.js';
import type { SimdKernel } from './simd-kernel.js';
import { selectionNetwork } from './sorting-network.js';

/** Bytes of keys per block (n rows): well inside a 1 MiB L2 beside the updates streaming through. */
const BLOCK_TARGET_BYTES = 256 * 1024;
/**
 * Lanes (coordinates) per block: a multiple of 32, so a row of keys is a whole number of 64-byte
 * cache lines and, with one line of padding, the row stride an odd number of lines (rows then
 * spread over the cache sets instead of all landing in the same few).
 */
const LANE_MULTIPLE = 32;
const MAX_LANES = 4096;

/** One block of sorted columns, handed to a visitor while the keys are valid. */
export interface SortedBlock {
  kernel: SimdKernel;
  /** First coordinate of the block. */
  start: number;
  /** Coordinates in the block that exist (the last block may be partial; the rest is padding). */
  count: number;
  /** Lanes in the block, `count` rounded up to a multiple of 16: what the kernels work on. */
  lanes: number;
  /** Byte address of the keys: the r-th smallest value of every column on row r. */
  keys: number;
  /** Bytes from one row of keys to the next. */
  stride: number;
  /** Byte address of the reduction's `lanes` results (f32), unless the reduction is `sorted`. */
  out: number;
  /** Byte address of one i32 flag per group of 4 lanes (see `LaneReduction`). */
  flags: number;
}

/** Lanes per block for n updates. */
export function lanesFor(n: number): number {
  const lanes = Math.floor(BLOCK_TARGET_BYTES / (4 * n) / LANE_MULTIPLE) * LANE_MULTIPLE;
  return Math.min(MAX_LANES, Math.max(LANE_MULTIPLE, lanes));
}

/**
 * Sorts every column of `vectors` (all of `length` values), reduces each as `reduction` says, and
 * calls `visit` once per block of coordinates (see `LaneReduction`; with `sorted` only the sorted
 * positions [from, to) are certain, the network being pruned to them). Updates that share one
 * kernel arena with room to spare are read in place; others are copied block by block into a
 * private arena. Throws INTERNAL without WebAssembly SIMD.
 */
export function forEachSortedBlock(
  vectors: readonly Float32Array[],
  length: number,
  reduction: LaneReduction,
  visit: (block: SortedBlock) => void,
): void {
  const n = vectors.length;
  const lanes = lanesFor(n);
  const stride = 4 * lanes + 64;
  const positions = positionsOf(reduction, n);
  const network = selectionNetwork(n, positions.from, positions.to);
  const placement = placeBeside(
    vectors,
    () => floatBytes(n) + floatBytes((n * stride) / 4) + 2 * floatBytes(lanes),
  );
  const { arena } = placement;
  try {
    const rowTable = region(arena, n);
    const table = new Int32Array(rowTable.buffer, rowTable.byteOffset, n);
    const keysView = region(arena, (n * stride) / 4);
    const keys = keysView.byteOffset;
    const out = region(arena, lanes).byteOffset;
    const flags = region(arena, lanes / 4).byteOffset;
    const { kernel } = arena;
    const sorter = networkKernel(kernel.memory, { n, network, strideBytes: stride, reduction });
    const sortBlock = (start: number, count: number): void => {
      const blockLanes = Math.ceil(count / 16) * 16;
      kernel.keysFromRows(table.byteOffset, n, start * 4, keys, blockLanes * 4, stride);
      sorter.sortLanes(keys, blockLanes / 4, out, flags);
      visit({ kernel, start, count, lanes: blockLanes, keys, stride, out, flags });
    };
    // Full blocks are read in place when possible; the rest is copied into the key rows first
    // (zero-padded, so no lane reads past the end of an update) and converted there.
    const inPlaceEnd = placement.inPlace ? length - (length % lanes) : 0;
    if (inPlaceEnd > 0) {
      vectors.forEach((v, r) => (table[r] = v.byteOffset));
      for (let start = 0; start < inPlaceEnd; start += lanes) sortBlock(start, lanes);
    }
    const floatStride = stride / 4;
    for (let start = inPlaceEnd; start < length; start += lanes) {
      const end = Math.min(length, start + lanes);
      vectors.forEach((v, r) => {
        const at = r * floatStride;
        keysView.set(v.subarray(start, end), at);
        keysView.fill(0, at + end - start, at + lanes);
        table[r] = keys + r * stride - start * 4;
      });
      sortBlock(start, end - start);
    }
  } finally {
    placement.release();
  }
}
