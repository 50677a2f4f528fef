// The audit's robust reference: what "typical" means for one round's updates. The coordinate-wise
// median (Yin et al. 2018, the `median` strategy's output) moves little whatever a minority of the
// updates does (its breakdown point is 50% per coordinate), unlike the plain mean, which one
// unclipped attacker can drag anywhere. A hierarchical round takes the coordinate-wise median of
// its shards' medians (exact with one shard).
import { FlotillaError } from '@flotilla/protocol';
import { columnMedians } from '../strategies/coordinate-wise.js';
import { l2Norm, nearestDistances, normsAndCosinesTo, type TensorList } from './cosine.js';
import { othersMedianScreen, type OthersMedianScreen } from './others-median.js';

/**
 * Coordinate-wise median of updates with the same layout (mean of the two middle values when even),
 * the `median` strategy's columns: its SIMD path picks the middle rows in WebAssembly instead of
 * reading every sorted column back into JavaScript.
 */
export function coordinateMedian(updates: readonly TensorList[]): Float32Array[] {
  const first = updates[0];
  if (first === undefined) throw new FlotillaError('INTERNAL', 'no updates to take a median of');
  return first.map((t, k) =>
    columnMedians(
      updates.map((u) => {
        const tensor = u[k];
        if (tensor?.length !== t.length)
          throw new FlotillaError('SHAPE_MISMATCH', 'updates must have the same tensors with the same sizes');
        return tensor;
      }),
      t.length,
    ),
  );
}

/** What the per-update screen looks at, whoever computed it (one process or the shard jobs). */
export interface UpdateStats {
  /** L2 norm of the update. */
  norm: number;
  /** Cosine to the round's robust reference. */
  cosine: number;
  /**
   * Cosine to the coordinate-wise median of the other updates of the round (of its shard, in a
   * hierarchical round); null if there are none.
   */
  othersCosine: number | null;
  /**
   * Relative distance ‖u − v‖ / max(‖u‖, ‖v‖) to the closest other update of the round (of its
   * shard, in a hierarchical round); null if there is none.
   */
  nearestDistance: number | null;
}

/** The part of {@link UpdateStats} that needs no reference: each update against its peers. */
export type PeerStats = Omit<UpdateStats, 'cosine'>;

/**
 * Each update's norm, cosine to the median of the others and distance to the nearest other, over
 * one group of updates (the round, or a hierarchical round's shard). `norms` are `l2Norm`s the
 * caller has already; without them they come from the others' median pass, which sums the same
 * squares (others-median.ts).
 */
export function peerStats(
  updates: readonly TensorList[],
  norms?: readonly number[],
  /** The others' median pass over `updates`, when the caller ran it already. */
  others: OthersMedianScreen = othersMedianScreen(updates),
): PeerStats[] {
  const squares = others.squaredNorms;
  const known = norms ?? (squares ? Array.from(squares, (s) => Math.sqrt(s)) : updates.map((u) => l2Norm(u)));
  const nearest = nearestDistances(updates, known);
  return known.map((norm, i) => ({
    norm,
    othersCosine: others.cosines[i] ?? null,
    nearestDistance: nearest[i] ?? null,
  }));
}

/** Each update's {@link UpdateStats} against `reference`, computed in one process. */
export function updateStats(updates: readonly TensorList[], reference: TensorList): UpdateStats[] {
  const measured = normsAndCosinesTo(updates, reference);
  const peers = peerStats(
    updates,
    measured.map((m) => m.norm),
  );
  return measured.map(({ cosine }, i) => {
    const peer = peers[i];
    if (peer === undefined) throw new FlotillaError('INTERNAL', 'peer stats do not cover every update');
    return {
      norm: peer.norm,
      cosine,
      othersCosine: peer.othersCosine,
      nearestDistance: peer.nearestDistance,
    };
  });
}
