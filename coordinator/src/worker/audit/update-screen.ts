// The per-update screen of the drift audit. Every threshold is relative to the round's own spread:
// a score is (value − median) / σ̂ with σ̂ = 1.4826·MAD (a modified z-score, Iglewicz & Hoaglin
// 1993), so a round of honest but heterogeneous (non-IID) devices widens its own band instead of
// being flagged wholesale, and a minority can never move the band far. Floors on σ̂ keep
// differences too small to matter (rounding, or a tightly clustered IID round) from becoming flags.
// A low cosine flags an update only if it also opposes the consensus of the others (its cosine to
// their median is below `minCosine`, default 0; others-median.ts): at the clip bound every update
// has the same norm, and an honest device holding other labels is as much an outlier of the
// round's cosines as a clipped sign flip, but it is orthogonal to the others, not against them.
// When attackers are half a round, its median is half theirs and nothing is an outlier: an update
// that opposes both the others and the last promoted step (public: the fleet has both adapters)
// is then flagged too, as FLTrust (Cao et al., NDSS 2021) gives no weight to an update pointing
// against a reference the attackers do not control.
import type { AuditPolicy } from '@flotilla/protocol';
import { at } from '@flotilla/protocol';
import { median, modifiedZScores } from './norm-stats.js';
import type { UpdateStats } from './reference.js';

/**
 * σ̂ floor of the norm scores, relative to their median: 15%, so with the default threshold 3.5
 * an update is never a norm outlier for being less than about 50% longer than the median. Honest
 * norms can cluster tightly, while the updates this score is for are several times longer
 * (scaling, boosting).
 */
export const RELATIVE_SPREAD_FLOOR = 0.15;

/**
 * Lower bound of the σ̂ floor of the distance scores, relative to their median: 10%, so with the
 * default threshold 3.5 an update is "too central" only when it is less than 0.65 of the round's
 * median distance from the reference. A crafted mean sits far inside the honest updates: in the
 * audit-precision suite at C = 1 (IID, 10 updates of 2,208 parameters a round, 3 seeds), 1,079
 * honest updates were never closer than 0.88 of their round's median distance, while a lone "a
 * little is enough" attacker (it sends the round's mean, z = 0, then clips) was at 0.48 to 0.54,
 * above the 0.475 that a 15% floor allowed.
 */
export const CENTRAL_SPREAD_FLOOR = 0.1;

/**
 * σ̂ floor of the distance scores for updates of `dimension` parameters, relative to the median
 * distance: {@link CENTRAL_SPREAD_FLOOR}, or 1/√(2·dimension) when larger, the relative spread
 * of the length of isotropic noise in that many dimensions (a chi variable): a small update's
 * distances vary that much by chance (in a 32-parameter synthetic IID round an honest update sat
 * at 0.63 of the median distance).
 */
export function centralSpreadFloor(dimension: number): number {
  return Math.max(CENTRAL_SPREAD_FLOOR, 1 / Math.sqrt(2 * Math.max(1, dimension)));
}
/** σ̂ floor of the cosine scores, in cosine units: 0.05. */
export const COSINE_SPREAD_FLOOR = 0.05;

/**
 * The typical norm of honest updates, as the last promoted round saw it (its unflagged updates):
 * a reference from outside the round, for rounds in which attackers are as many as honest devices
 * and the round's own median is theirs.
 */
export interface NormScale {
  median: number;
  /** 1.4826 · MAD of those norms. */
  spread: number;
}

/** {@link NormScale} of a set of norms (null when empty). */
export function normScale(norms: readonly number[]): NormScale | null {
  if (norms.length === 0) return null;
  const med = median(norms);
  return { median: med, spread: 1.4826 * median(norms.map((x) => Math.abs(x - med))) };
}

/** Per-update screening result. */
export interface UpdateFinding {
  index: number;
  label: string;
  norm: number;
  /** Cosine to the round's robust reference. */
  cosine: number;
  /** Cosine to the coordinate-wise median of the other updates; null when not computed (a single update). */
  othersCosine: number | null;
  /** Cosine to the last promoted step; null without one (first round, hierarchical round). */
  stepCosine: number | null;
  /** L2 distance to the robust reference. */
  distance: number;
  /** Relative distance to the closest other update; null when not computed (or a single update). */
  nearestDistance: number | null;
  /** Modified z-scores of the norm, the cosine and the distance within the round. */
  normZ: number;
  /** The norm's z-score against the last promoted round's {@link NormScale}; null without one. */
  normHistoryZ: number | null;
  cosineZ: number;
  distanceZ: number;
  /** Norm far above the round's, or the last promoted round's (can dominate an average: scaling, boosting). */
  normOutlier: boolean;
  /**
   * Points away: cosine to the others' median below `minCosine`, and either a cosine to the
   * round's reference far below the round's or a cosine to the last promoted step below
   * `minCosine` too (sign flips).
   */
  lowCosine: boolean;
  /**
   * Far closer to the reference than the round's honest spread allows ("a little is enough",
   * Baruch et al. 2019, sends the mean minus a fraction of a standard deviation).
   */
  tooCentral: boolean;
  /** Near-identical to another device's update (`nearestDistance` <= duplicateDistance): collusion. */
  duplicate: boolean;
}

export const isFlagged = (f: UpdateFinding): boolean =>
  f.normOutlier || f.lowCosine || f.tooCentral || f.duplicate;

/** ‖u − r‖ from ‖u‖, cos(u, r) and ‖r‖, so shard jobs need only report scalars. */
export function distanceToReference(norm: number, cosine: number, referenceNorm: number): number {
  return Math.sqrt(
    Math.max(0, norm * norm - 2 * norm * referenceNorm * cosine + referenceNorm * referenceNorm),
  );
}

/**
 * Screens each update against the round: a norm far above the others' or the last promoted
 * round's (one-sided; `normHistory`), a cosine to the others' median below `policy.minCosine`
 * with a cosine to the reference far below the others' or a cosine to the last promoted step
 * (`stepCosines`) below `policy.minCosine` too, a distance to the reference far below the others', or a near-duplicate of
 * another update. "Far" is `policy.madThreshold` modified z-score units. With fewer than 3
 * updates the round has no spread to speak of: only duplicates and norms far above the last
 * promoted round's are flagged.
 */
export function screenUpdates(options: {
  stats: readonly UpdateStats[];
  referenceNorm: number;
  /** Parameters per update (the distance floor grows for small updates: `centralSpreadFloor`). */
  dimension: number;
  labels?: readonly string[];
  /** The last promoted round's norm scale, if any (not in DP tasks). */
  normHistory?: NormScale | null;
  /** Each update's cosine to the last promoted step, if there is one (not in DP tasks). */
  stepCosines?: ReadonlyArray<number | null> | null;
  policy: Pick<AuditPolicy, 'madThreshold' | 'minCosine' | 'duplicateDistance'>;
}): UpdateFinding[] {
  const { stats, referenceNorm, policy } = options;
  const k = policy.madThreshold;
  const spread = stats.length >= 3;
  const distances = stats.map((s) => distanceToReference(s.norm, s.cosine, referenceNorm));
  const normZ = modifiedZScores(
    stats.map((s) => s.norm),
    { minRelativeSpread: RELATIVE_SPREAD_FLOOR },
  );
  const cosineZ = modifiedZScores(
    stats.map((s) => s.cosine),
    { minRelativeSpread: 0, minSpread: COSINE_SPREAD_FLOOR },
  );
  const distanceZ = modifiedZScores(distances, {
    minRelativeSpread: centralSpreadFloor(options.dimension),
  });
  const history = options.normHistory ?? null;
  const historySpread =
    history === null ? 0 : Math.max(history.spread, RELATIVE_SPREAD_FLOOR * history.median);
  return stats.map((s, index) => {
    const nz = at(normZ, index);
    const nhz = history === null || historySpread === 0 ? null : (s.norm - history.median) / historySpread;
    const cz = at(cosineZ, index);
    const dz = at(distanceZ, index);
    const stepCosine = options.stepCosines?.[index] ?? null;
    const opposesOthers = s.othersCosine !== null && s.othersCosine < policy.minCosine;
    const opposesStep = stepCosine !== null && stepCosine < policy.minCosine;
    return {
      index,
      label: options.labels?.[index] ?? `update #${index}`,
      norm: s.norm,
      cosine: s.cosine,
      othersCosine: s.othersCosine,
      stepCosine,
      distance: at(distances, index),
      nearestDistance: s.nearestDistance,
      normZ: nz,
      normHistoryZ: nhz,
      cosineZ: cz,
      distanceZ: dz,
      normOutlier: (spread && nz > k) || (nhz !== null && nhz > k),
      lowCosine: spread && opposesOthers && (cz < -k || opposesStep),
      tooCentral: spread && dz < -k,
      duplicate: s.nearestDistance !== null && s.nearestDistance <= policy.duplicateDistance,
    };
  });
}
