// The drift audit of a hierarchical round, in its two passes. The sum pass, which holds a shard's
// decoded updates anyway, measures each against its peers: its norm, its cosine to the median of
// the shard's other updates, and its relative distance to the closest other update of the shard.
// The second pass, once the round's robust reference exists (the median of the shard medians),
// only needs each update's cosine to it: it reads the same bytes again, compares them with their
// digest and reads them in place, with no second check of their contents. The same functions as
// the single-stage audit (audit/reference.ts), so a hierarchical round is screened as one stage
// would screen it; only near-duplicates in different shards go unseen (shards are cut by blob
// digest, so colluders do not land in one shard by design).
import { FlotillaError, decodeDeltaFile } from '@flotilla/protocol';
import { normsAndCosinesTo } from '../audit/cosine.js';
import { othersMedianScreen } from '../audit/others-median.js';
import { peerStats, type PeerStats } from '../audit/reference.js';
import { columnMedians } from '../strategies/coordinate-wise.js';
import { assertSameLayout, flattenTensors, tensorLayout } from '../strategies/flatten.js';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';

/**
 * The sum pass's screen of a shard's flattened trained vectors (the adapter's layout) and, with
 * `withMedian`, their coordinate-wise median, which the screen's sorted columns hold anyway.
 */
export function shardScreen(
  updates: readonly Float32Array[],
  options: { withMedian?: boolean } = {},
): { peers: PeerStats[]; median: Float32Array | null } {
  const lists = updates.map((values) => [values]);
  const others = othersMedianScreen(lists, options);
  return { peers: peerStats(lists, undefined, others), median: others.median?.[0] ?? null };
}

/**
 * The median delta from the median of the trained vectors ({@link trainedVector}'s order): the
 * adapter's tensors as `layout` (any delta of the shard) has them, frozen ones zero, as
 * {@link medianDelta} gives it.
 */
export function medianFromTrained(
  trained: Float32Array,
  layout: TensorMap,
  frozen: ReadonlySet<string>,
): TensorMap {
  const slots = new Map(
    tensorLayout(new Map([...layout].filter(([name]) => !frozen.has(name)))).map((s) => [s.name, s]),
  );
  const median: TensorMap = new Map();
  for (const { name, shape, length } of tensorLayout(layout)) {
    const slot = slots.get(name);
    const values = slot ? trained.slice(slot.offset, slot.offset + slot.length) : new Float32Array(length);
    median.set(name, { shape: [...shape], values });
  }
  return median;
}

/** Each flattened update's cosine to the flattened reference (audit/cosine.ts). */
export function referenceCosines(updates: readonly Float32Array[], reference: Float32Array): number[] {
  if (updates.some((values) => values.length !== reference.length))
    throw new FlotillaError('SHAPE_MISMATCH', 'an update and the round reference differ in size');
  return normsAndCosinesTo(
    updates.map((values) => [values]),
    [reference],
  ).map((m) => m.cosine);
}

/**
 * The trained vector of a delta the sum pass already checked, read again once its bytes matched
 * their digest: the same bytes, so every check they passed holds and is not repeated. F32
 * tensors are read in place (no copy), as the sum pass read them.
 */
export function summedTrainedVector(bytes: Uint8Array, frozen: ReadonlySet<string>): Float32Array {
  return trainedVector(decodeDeltaFile(bytes, { inPlace: true }).tensors, frozen);
}

/**
 * The coordinate-wise median of same-named deltas, as a delta with the same names and shapes:
 * each shard's median, and then the median of the shard medians (the round's reference). Taken
 * tensor by tensor (each coordinate's column is its own), so no delta is copied into one vector.
 * Tensors named in `zeros` are all zeros in every delta (frozen ones, which loadUpdates refuses
 * otherwise): their median is zero without sorting.
 */
export function medianDelta(
  deltas: readonly TensorMap[],
  options: { zeros?: ReadonlySet<string> } = {},
): TensorMap {
  const first = deltas[0];
  if (first === undefined) throw new FlotillaError('INTERNAL', 'no deltas to take a median of');
  const layout = tensorLayout(first);
  for (const delta of deltas) assertSameLayout(tensorLayout(delta), layout);
  const median: TensorMap = new Map();
  for (const { name, shape, length } of layout) {
    const values = options.zeros?.has(name)
      ? new Float32Array(length)
      : columnMedians(
          deltas.map((d) => d.get(name)?.values ?? new Float32Array(0)),
          length,
        );
    median.set(name, { shape: [...shape], values });
  }
  return median;
}

/**
 * The delta's trained tensors as one vector, in {@link flattenTensors}' order. Frozen tensors are
 * all zeros (loadUpdates refuses anything else), and zero coordinates change none of the screen's
 * float64 sums, norms, medians or distances, bit for bit (a sum that starts at +0 never turns −0,
 * and x + 0 = x), so the screen skips them. A single trained tensor is used as it is, not copied.
 */
export function trainedVector(delta: TensorMap, frozen: ReadonlySet<string>): Float32Array {
  const trained = new Map([...delta].filter(([name]) => !frozen.has(name)));
  const [only, ...others] = trained.values();
  if (only !== undefined && others.length === 0) {
    tensorLayout(trained);
    return only.values;
  }
  return flattenTensors(trained).values;
}
