import type { DpRelease, RoundLogEvent } from '../round-log/events.js';
import { epsilonFromRdp, type PrivacyBound, type RdpConversion } from './conversion.js';

// ε recomputed from a round log alone (docs/privacy.md, "Recomputing ε"). Every DP aggregation
// record lists the noised queries of its round; each is a Gaussian mechanism whose RDP at order α
// is α·ρ with ρ = (sensitivity / noiseStd)² / 2 (Mironov 2017). Without amplification by
// sampling, RDP composes by addition, so after T rounds RDP(α) = α·Σρ, converted to ε at δ over
// the record's orders. Pure arithmetic on the records: an auditor's verifier can run it.

/** Relative tolerance between a recorded ε and the recomputed one (float summation order). */
const EPSILON_TOLERANCE = 1e-9;

/** ρ of one round's releases: the round's RDP at order α is α·ρ (∞ when a release had no noise). */
export function releasesRho(releases: readonly DpRelease[]): number {
  let rho = 0;
  for (const release of releases)
    rho += release.noiseStd === 0 ? Infinity : (release.sensitivity / release.noiseStd) ** 2 / 2;
  return rho;
}

/**
 * The noise multiplier of the single Gaussian release that costs what `releases` cost together:
 * (2ρ)^(−1/2), 0 when a release had no noise. With adaptive clipping it is the task's z.
 */
export function effectiveNoiseMultiplier(releases: readonly DpRelease[]): number {
  const rho = releasesRho(releases);
  return rho === Infinity ? 0 : rho === 0 ? Infinity : (2 * rho) ** -0.5;
}

/** ε at `delta` of a total RDP curve α·ρ (composed Gaussian mechanisms, no amplification). */
export function epsilonOfRho(options: {
  rho: number;
  orders: readonly number[];
  delta: number;
  conversion: RdpConversion;
}): PrivacyBound {
  const { rho, orders, delta, conversion } = options;
  // rho = 0 spends nothing (and avoids 0 · ∞ for an infinite order).
  const rdp = orders.map((order) => (rho === 0 ? 0 : order * rho));
  return epsilonFromRdp({ orders, rdp, delta, conversion });
}

/** One charged round as the log records it, with ε recomputed after it. */
export interface LedgerRound {
  roundId: string;
  /** seq of the (first) aggregation record of the round. */
  seq: number;
  releases: DpRelease[];
  /** The round's RDP at order α is α·rho. */
  rho: number;
  /** Rounds charged so far, this one included, counted from the log. */
  chargedRounds: number;
  /** What the record says; null in a record without a privacy block. */
  recordedChargedRounds: number | null;
  /** ε after this round, recomputed from the log. NaN when an earlier round is not recomputable. */
  epsilon: number;
  /** The Rényi order that gives `epsilon`. */
  order: number;
  /** ε the record states. */
  recordedEpsilon: number | null;
  delta: number | null;
  /** What became of the noised candidate. */
  decision: 'promoted' | 'rejected' | 'undecided';
  /** Devices selected and devices eligible at selection (`round.selected`), when logged. */
  selected: number | null;
  eligible: number | null;
}

export type LedgerProblemCode =
  | 'NOT_RECOMPUTABLE'
  | 'EPSILON_MISMATCH'
  | 'CHARGE_COUNT'
  | 'RELEASED_TWICE'
  | 'NO_NOISE'
  | 'NOISE_BELOW_POLICY'
  | 'OVER_BUDGET';

export interface LedgerProblem {
  seq: number;
  roundId: string;
  code: LedgerProblemCode;
  message: string;
}

export interface PrivacyLedger {
  taskId: string;
  rounds: LedgerRound[];
  /** ε after the last charged round (0 before any), recomputed; NaN if not recomputable. */
  epsilon: number;
  /** ε the last aggregation record states (null without one). */
  recordedEpsilon: number | null;
  delta: number | null;
  /** The ε budget of the task's latest opened DP round, if any. */
  epsilonBudget: number | null;
  problems: LedgerProblem[];
}

/** Anything with a sequence number and a round-log event (a `RoundLogRecord`). */
export interface LedgerInput {
  seq: number;
  event: RoundLogEvent;
}

const within = (a: number, b: number): boolean =>
  a === b ||
  (Number.isFinite(a) &&
    Number.isFinite(b) &&
    Math.abs(a - b) <= EPSILON_TOLERANCE * Math.max(Math.abs(a), Math.abs(b)));

const same = (a: DpRelease[], b: DpRelease[]): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * Recomputes, from the records alone, the ε a task has spent after each noised aggregation
 * (promoted or rejected), and lists every place where the log disagrees with itself: a recorded ε
 * that is not the recomputed one, a charge counter that skips or repeats, a DP aggregation without
 * the parameters to recompute it, one round releasing two different aggregates, less noise than
 * the round opened promising (`round.opened.dp.noiseMultiplier`), ε past the round's budget.
 * A retried job may log the same aggregation twice: it is charged once when the aggregate digest
 * and the releases are the same.
 */
export function privacyLedger(records: Iterable<LedgerInput>, taskId: string): PrivacyLedger {
  const rounds: LedgerRound[] = [];
  const byRound = new Map<string, { row: LedgerRound; aggregateDigest: string }>();
  const selection = new Map<string, { selected: number; eligible: number }>();
  const promised = new Map<string, { noiseMultiplier: number; epsilonBudget: number }>();
  const problems: LedgerProblem[] = [];
  let rho = 0;
  let recomputable = true;
  let recordedEpsilon: number | null = null;
  let epsilonBudget: number | null = null;
  let delta: number | null = null;
  let lastEpsilon = 0;
  for (const { seq, event } of records) {
    if (event.type === 'round.opened' && event.taskId === taskId && event.dp !== null) {
      epsilonBudget = event.dp.epsilonBudget;
      promised.set(event.roundId, event.dp);
    }
    if (event.type === 'round.selected' && event.taskId === taskId)
      selection.set(event.roundId, { selected: event.devices.length, eligible: event.eligible });
    if ((event.type === 'promotion' || event.type === 'rejection') && event.taskId === taskId) {
      const charged = byRound.get(event.roundId);
      if (charged) charged.row.decision = event.type === 'promotion' ? 'promoted' : 'rejected';
    }
    if (event.type !== 'aggregation' || event.taskId !== taskId) continue;
    if (event.epsilon === null && event.privacy === undefined) continue;
    const problem = (code: LedgerProblemCode, message: string): void => {
      problems.push({ seq, roundId: event.roundId, code, message });
    };
    const releases = event.privacy?.releases ?? [];
    const earlier = byRound.get(event.roundId);
    if (earlier) {
      if (earlier.aggregateDigest === event.aggregateDigest && same(earlier.row.releases, releases)) continue;
      problem(
        'RELEASED_TWICE',
        `round ${event.roundId} logs a second, different noised aggregate (${event.aggregateDigest}); it is charged again`,
      );
    }
    if (event.privacy === undefined) {
      recomputable = false;
      problem(
        'NOT_RECOMPUTABLE',
        `the aggregation of ${event.roundId} reports ε ${event.epsilon} without the parameters it was charged with`,
      );
    }
    const roundRho = releasesRho(releases);
    if (event.privacy !== undefined && roundRho === Infinity)
      problem('NO_NOISE', `round ${event.roundId} released an aggregate without noise: ε is unbounded`);
    const policy = promised.get(event.roundId);
    const z = effectiveNoiseMultiplier(releases);
    if (event.privacy !== undefined && policy && !(z >= policy.noiseMultiplier * (1 - EPSILON_TOLERANCE)))
      problem(
        'NOISE_BELOW_POLICY',
        `round ${event.roundId} released noise of multiplier ${z}; it opened promising ${policy.noiseMultiplier}`,
      );
    rho += roundRho;
    const chargedRounds = rounds.length + 1;
    let bound: PrivacyBound = { epsilon: Number.NaN, order: Number.NaN };
    if (recomputable && event.privacy !== undefined && event.delta !== null)
      bound = epsilonOfRho({
        rho,
        orders: event.privacy.orders,
        delta: event.delta,
        conversion: event.privacy.conversion,
      });
    const recordedCount = event.privacy?.chargedRounds ?? null;
    if (recordedCount !== null && recordedCount !== chargedRounds)
      problem(
        'CHARGE_COUNT',
        `round ${event.roundId} says ${recordedCount} rounds were charged; the log shows ${chargedRounds}`,
      );
    if (recomputable && event.epsilon !== null && !within(event.epsilon, bound.epsilon))
      problem(
        'EPSILON_MISMATCH',
        `round ${event.roundId} records ε ${event.epsilon}; the log's parameters give ${bound.epsilon}`,
      );
    if (
      policy &&
      !Number.isNaN(bound.epsilon) &&
      !(bound.epsilon <= policy.epsilonBudget * (1 + EPSILON_TOLERANCE))
    )
      problem(
        'OVER_BUDGET',
        `round ${event.roundId} took ε to ${bound.epsilon}, past the budget ${policy.epsilonBudget} it opened with`,
      );
    const sampled = selection.get(event.roundId);
    const row: LedgerRound = {
      roundId: event.roundId,
      seq,
      releases,
      rho: roundRho,
      chargedRounds,
      recordedChargedRounds: recordedCount,
      epsilon: bound.epsilon,
      order: bound.order,
      recordedEpsilon: event.epsilon,
      delta: event.delta,
      decision: 'undecided',
      selected: sampled?.selected ?? null,
      eligible: sampled?.eligible ?? null,
    };
    rounds.push(row);
    byRound.set(event.roundId, { row, aggregateDigest: event.aggregateDigest });
    recordedEpsilon = event.epsilon;
    delta = event.delta;
    lastEpsilon = bound.epsilon;
  }
  return { taskId, rounds, epsilon: lastEpsilon, recordedEpsilon, delta, epsilonBudget, problems };
}

/** Task ids with at least one DP aggregation in the records, in order of first appearance. */
export function dpTaskIds(records: Iterable<LedgerInput>): string[] {
  const ids = new Set<string>();
  for (const { event } of records)
    if (event.type === 'aggregation' && (event.epsilon !== null || event.privacy !== undefined))
      ids.add(event.taskId);
  return [...ids];
}
