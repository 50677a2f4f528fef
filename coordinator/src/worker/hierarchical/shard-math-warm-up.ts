// A math thread's first round after the worker starts was its slow one: V8 compiles the loops and
// tiers up the WebAssembly kernels while the round waits. Both passes run twice over a small
// synthetic shard when the thread starts, while the worker is idle: the first 1,000-update round
// took 1.99–2.22 s with it against 2.13–2.71 s without (six alternating pairs, medians 2.06 against
// 2.32 s), for about 0.15 s of the thread's CPU at start.
import { encodeFloat32Tensors, sha256Hex } from '@flotilla/protocol';
import { DEFAULT_SHARD_SIZE } from '../../shared/hierarchical-flow.js';
import { shardMath } from './shard-math.js';

/** What the warm-up computed: proof that it went through every step, not around them. */
export interface WarmUpResult {
  /** Deltas the sum pass summed (all of them: none may be refused). */
  summed: number;
  /** Peer stats the screen gave. */
  screened: number;
  /** The second pass's cosines. */
  cosines: number[];
}

/** Both passes, twice, over `updates` synthetic deltas of `length` values: the same code as a round, little data. */
export function warmUpShardMath(updates = DEFAULT_SHARD_SIZE, length = 4096): WarmUpResult {
  let seed = 1;
  const uniform = (): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31 - 0.5;
  };
  // A common part and a spread, as real deltas have, so the screen's bounds and branches all run.
  const common = Float32Array.from({ length }, uniform);
  const blobs = Array.from({ length: updates }, (_, i) => {
    const values = common.map((c) => c + 0.3 * uniform());
    const bytes = encodeFloat32Tensors(new Map([['warm-up', { shape: [length], values }]]));
    return { updateId: `warm-up-${i}`, blobDigest: sha256Hex(bytes), bytes, weight: 1 + (i % 3) };
  });
  let result: WarmUpResult = { summed: 0, screened: 0, cosines: [] };
  for (let pass = 0; pass < 2; pass++) {
    const sum = shardMath({
      kind: 'sum',
      blobs,
      expectedShapes: { 'warm-up': [length] },
      frozen: [],
      withMedian: true,
      withPeers: true,
    });
    const cosines = shardMath({ kind: 'stats', blobs, reference: common, frozen: [] });
    result = { summed: sum.sum?.count ?? 0, screened: sum.peers?.length ?? 0, cosines };
  }
  return result;
}
