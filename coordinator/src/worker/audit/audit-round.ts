import { FlotillaError, type AuditPolicy } from '@flotilla/protocol';
import { firstNonFinite } from '../strategies/checks.js';
import { cosineSimilarity, l2Norm, type TensorList } from './cosine.js';
import { compareOnHoldout, type HoldoutComparison, type HoldoutMetrics } from './holdout.js';
import { holdoutImprovement, type HoldoutImprovement } from './holdout-improvement.js';
import type { ModuleDrift } from './module-drift.js';
import { median, summarizeNorms, type NormSummary } from './norm-stats.js';
import { coordinateMedian, updateStats, type UpdateStats } from './reference.js';
import { isFlagged, normScale, screenUpdates, type NormScale, type UpdateFinding } from './update-screen.js';

/** A module of the candidate that the trust region scaled back onto the drift limit. */
export interface TrustRegionScaling {
  module: string;
  /** Drift the candidate had before scaling (may be Infinity over an all-zero base). */
  drift: number;
  /** Factor applied to the module's offset from the base, in [0, 1). */
  scale: number;
}

/** Everything the drift audit looks at for one round's candidate. */
export interface AuditRoundInput {
  /** Each accepted update's tensors (same layout as `aggregate`): the audit screens them itself. */
  updates?: readonly TensorList[];
  /**
   * Or each update's statistics against a reference computed elsewhere (a hierarchical round's
   * shard jobs), with the reference's L2 norm.
   */
  stats?: { perUpdate: readonly UpdateStats[]; referenceNorm: number; dimension: number };
  /**
   * Or, in a DP task, no per-update screening at all (nothing may depend on one device's update
   * beyond the noised aggregate): how many updates went in, and why they are not screened.
   */
  unscreened?: { count: number; reason: string };
  /**
   * The aggregation strategy and how many of this round's updates it is built to withstand (its
   * breakdown point, `byzantineTolerance`): flags up to that many do not fail the round.
   */
  tolerance?: { strategy: string; updates: number };
  /** The last promoted round's {@link NormScale}: norms far above it are outliers too. */
  normHistory?: NormScale | null;
  /**
   * The last promoted step (promoted adapter minus its parent) in the layout of `updates`: an
   * update against it and against the others is flagged even when it is no outlier of its round.
   */
  previousStep?: TensorList | null;
  /**
   * The screen's findings when it already ran on `updates` (before the aggregate, to leave flagged
   * updates out of it: `screenRoundUpdates`), used as they are instead of screening again.
   */
  findings?: readonly UpdateFinding[];
  /** How many flagged updates were left out of the aggregate (`audit.excludeFlagged`). */
  excludedFlagged?: number;
  /** Names for the reasons (e.g. pseudonyms). Default `update #<index>`. */
  labels?: readonly string[];
  /** The candidate aggregate delta (its finiteness is checked). */
  aggregate: TensorList;
  /** Per-module drift of the candidate as it would be promoted (after the trust region). */
  moduleDrift?: readonly ModuleDrift[];
  /** Modules the trust region scaled back onto the drift limit. */
  trustRegion?: readonly TrustRegionScaling[];
  /** Candidate (as it would be promoted) and current adapter on the server holdout. */
  holdout?: { candidate: HoldoutMetrics; current: HoldoutMetrics };
  /** ε for `delta` once this round is accounted, and the task's budget. */
  privacy?: { epsilon: number; epsilonBudget: number; delta: number };
}

/** One check of the decision. */
export interface AuditCheck {
  code:
    | 'inputs'
    | 'screening'
    | 'flagged-fraction'
    | 'module-drift'
    | 'trust-region'
    | 'holdout'
    | 'holdout-improvement'
    | 'privacy-budget';
  /**
   * `overridden`: a drift check failed, but the holdout shows the candidate better beyond noise,
   * or the audit is off (`enforce: false`) and only records.
   */
  status: 'pass' | 'fail' | 'overridden';
  message: string;
}

export interface AuditSummary {
  updateCount: number;
  flaggedCount: number;
  flaggedFraction: number;
  /** Null when the updates were not screened (DP). */
  norms: NormSummary | null;
  /** Norm scale of the unflagged updates: the next round's `normHistory` if this one is promoted. */
  normScale: NormScale | null;
  cosineToReference: { min: number; median: number } | null;
  /** Module with the largest drift (after the trust region). */
  maxModuleDrift: ModuleDrift | null;
  /** Smallest trust-region scale applied, or null when no module was scaled. */
  trustRegionScale: number | null;
  holdout: HoldoutComparison | null;
  improvement: HoldoutImprovement | null;
  privacy: { epsilon: number; epsilonBudget: number; delta: number } | null;
}

export interface AuditResult {
  decision: 'promote' | 'reject';
  /** The task cannot usefully continue (the privacy budget is spent): stop it. */
  terminal: boolean;
  checks: AuditCheck[];
  /**
   * Sentences for the auditor: failed checks, overridden checks, flagged updates, passed checks.
   */
  reasons: string[];
  findings: UpdateFinding[];
  summary: AuditSummary;
}

const num = (x: number): string => (Number.isFinite(x) ? String(Number(x.toPrecision(4))) : String(x));

function allFinite(tensors: TensorList): boolean {
  return tensors.every((t) => firstNonFinite(t) < 0);
}

/** Checks that reject even with the audit off: an empty or non-finite candidate, a spent ε budget. */
const ALWAYS_ENFORCED: ReadonlySet<AuditCheck['code']> = new Set(['inputs', 'privacy-budget']);

/** Checks that fail for drift alone, which a holdout improvement beyond noise overrides. */
const DRIFT_CHECKS: ReadonlySet<AuditCheck['code']> = new Set(['flagged-fraction', 'module-drift']);

function describeFlags(f: UpdateFinding, policy: AuditPolicy, medianNorm: number): string[] {
  const lines: string[] = [];
  const k = num(policy.madThreshold);
  if (f.normOutlier) {
    const history =
      f.normHistoryZ === null ? '' : `, ${num(f.normHistoryZ)} against the last promoted round's`;
    lines.push(
      `${f.label}: norm ${num(f.norm)} is an outlier (modified z-score ${num(f.normZ)} within the round${history}; threshold ${k}; median norm ${num(medianNorm)})`,
    );
  }
  if (f.lowCosine) {
    const against = `against the other updates (cosine ${num(f.othersCosine ?? Number.NaN)} to their median, below ${num(policy.minCosine)})`;
    lines.push(
      f.cosineZ < -policy.madThreshold
        ? `${f.label}: points away from the round's robust reference (cosine ${num(f.cosine)}, modified z-score ${num(f.cosineZ)} < -${k}) and ${against}`
        : `${f.label}: points ${against} and against the last promoted step (cosine ${num(f.stepCosine ?? Number.NaN)})`,
    );
  }
  if (f.tooCentral)
    lines.push(
      `${f.label}: unusually close to the round's robust reference (distance ${num(f.distance)}, modified z-score ${num(f.distanceZ)} < -${k})`,
    );
  if (f.duplicate)
    lines.push(
      `${f.label}: near-identical to another device's update (relative distance ${num(f.nearestDistance ?? Number.NaN)} <= ${num(policy.duplicateDistance)})`,
    );
  return lines;
}

/** What the per-update screen reads of a round. */
export type ScreenInput = Pick<
  AuditRoundInput,
  'updates' | 'stats' | 'findings' | 'labels' | 'normHistory' | 'previousStep'
>;

/**
 * The per-update screen of a round (update-screen.ts) against its robust reference: the findings
 * given, or those of its updates, or of their statistics (none without either).
 */
export function screenRoundUpdates(input: ScreenInput, policy: AuditPolicy): UpdateFinding[] {
  if (input.findings !== undefined) return [...input.findings];
  const common = {
    ...(input.labels ? { labels: input.labels } : {}),
    normHistory: input.normHistory ?? null,
    policy,
  };
  if (input.updates !== undefined) {
    const reference = coordinateMedian(input.updates);
    const step = input.previousStep ?? null;
    return screenUpdates({
      stats: updateStats(input.updates, reference),
      referenceNorm: l2Norm(reference),
      dimension: reference.reduce((sum, t) => sum + t.length, 0),
      stepCosines: step === null ? null : input.updates.map((u) => cosineSimilarity(u, step)),
      ...common,
    });
  }
  if (input.stats !== undefined)
    return screenUpdates({
      stats: input.stats.perUpdate,
      referenceNorm: input.stats.referenceNorm,
      dimension: input.stats.dimension,
      ...common,
    });
  return [];
}

function inputsFinite(input: AuditRoundInput): boolean {
  const stats = input.stats;
  return (
    (input.updates ?? []).every(allFinite) &&
    allFinite(input.aggregate) &&
    (stats === undefined ||
      (Number.isFinite(stats.referenceNorm) &&
        stats.perUpdate.every(
          (s) =>
            Number.isFinite(s.norm) &&
            Number.isFinite(s.cosine) &&
            Number.isFinite(s.othersCosine ?? 0) &&
            Number.isFinite(s.nearestDistance ?? 0),
        )))
  );
}

/**
 * The drift audit of one round's candidate. Flags updates against the round's robust reference
 * with thresholds from the round's own spread (update-screen.ts); rejects the candidate when the
 * inputs are empty or not finite, the holdout accuracy dropped past `maxAccuracyDrop`, the privacy
 * budget would be exceeded, or — for drift alone — too many updates were flagged or a module
 * drifted past `maxModuleDrift`, unless the holdout shows the candidate better beyond noise. With
 * `enforce: false` only empty or non-finite inputs and a spent privacy budget reject. Pure: it
 * decides and explains.
 */
export function auditRound(input: AuditRoundInput, policy: AuditPolicy): AuditResult {
  const given = [input.updates, input.stats, input.unscreened].filter((x) => x !== undefined).length;
  if (given !== 1)
    throw new FlotillaError('INTERNAL', 'give exactly one of the updates, their stats, or `unscreened`');
  const updateCount = input.updates?.length ?? input.stats?.perUpdate.length ?? input.unscreened?.count ?? 0;
  const checks: AuditCheck[] = [];
  const check = (code: AuditCheck['code'], pass: boolean, message: string) =>
    checks.push({ code, status: pass ? 'pass' : 'fail', message });

  let findings: UpdateFinding[] = [];
  if (updateCount === 0) check('inputs', false, 'no updates to audit');
  else if (!inputsFinite(input))
    check('inputs', false, 'an update, its statistics or the aggregate contains NaN or infinite values');
  else findings = screenRoundUpdates(input, policy);
  if (input.unscreened) check('screening', true, input.unscreened.reason);
  if (input.excludedFlagged !== undefined && input.excludedFlagged > 0)
    check(
      'screening',
      true,
      `${input.excludedFlagged} flagged update${input.excludedFlagged === 1 ? ' was' : 's were'} left out of the aggregate (audit.excludeFlagged)`,
    );

  const flagged = findings.filter(isFlagged);
  const flaggedFraction = findings.length === 0 ? 0 : flagged.length / findings.length;
  const norms = findings.length === 0 ? null : summarizeNorms(findings.map((f) => f.norm));
  const flagLines = flagged.flatMap((f) => describeFlags(f, policy, norms?.median ?? Number.NaN));
  if (findings.length > 0) {
    const tolerated = (input.tolerance?.updates ?? 0) / findings.length;
    const limit = Math.max(policy.maxFlaggedFraction, tolerated);
    const why =
      tolerated > policy.maxFlaggedFraction && input.tolerance
        ? `: the ${input.tolerance.strategy} strategy withstands ${input.tolerance.updates} of ${findings.length}`
        : '';
    check(
      'flagged-fraction',
      flaggedFraction <= limit,
      `${flagged.length} of ${findings.length} updates flagged (${num(100 * flaggedFraction)}%, limit ${num(100 * limit)}%${why})`,
    );
  }

  for (const t of input.trustRegion ?? [])
    check(
      'trust-region',
      true,
      `module ${t.module}: the candidate drifted ${num(t.drift)} from the base, above the limit ${num(policy.maxModuleDrift)}; its offset was scaled by ${num(t.scale)} onto the limit (trust region)`,
    );
  let maxModuleDrift: ModuleDrift | null = null;
  for (const d of input.moduleDrift ?? []) {
    if (maxModuleDrift === null || !(d.drift <= maxModuleDrift.drift)) maxModuleDrift = d;
    if (!(d.drift <= policy.maxModuleDrift)) {
      const why = d.baseNorm === 0 ? ' (the base weight is all zeros)' : '';
      check(
        'module-drift',
        false,
        `module ${d.module} (${d.kind}) drifted ${num(d.drift)} from the base, above the limit ${num(policy.maxModuleDrift)}${why}`,
      );
    }
  }
  if (maxModuleDrift !== null && maxModuleDrift.drift <= policy.maxModuleDrift)
    check(
      'module-drift',
      true,
      `largest module drift ${num(maxModuleDrift.drift)} (${maxModuleDrift.module}) within ${num(policy.maxModuleDrift)}`,
    );

  let holdout: HoldoutComparison | null = null;
  let improvement: HoldoutImprovement | null = null;
  if (input.holdout !== undefined) {
    holdout = compareOnHoldout({ ...input.holdout, maxAccuracyDrop: policy.maxAccuracyDrop });
    check('holdout', holdout.pass, holdout.reason);
    improvement = holdoutImprovement({ ...input.holdout, significance: policy.holdoutSignificance });
    if (improvement) check('holdout-improvement', true, improvement.reason);
  }

  const privacy = input.privacy ?? null;
  let terminal = false;
  if (privacy !== null) {
    const spent = `epsilon ${num(privacy.epsilon)} at delta ${privacy.delta}`;
    const within = privacy.epsilon <= privacy.epsilonBudget;
    terminal = !within;
    check(
      'privacy-budget',
      within,
      within
        ? `privacy: ${spent} within the budget ${num(privacy.epsilonBudget)}`
        : `privacy budget exhausted: ${spent} would exceed the budget ${num(privacy.epsilonBudget)}`,
    );
  }

  const hardFailure = checks.some((c) => c.status === 'fail' && !DRIFT_CHECKS.has(c.code));
  const driftFailure = checks.some((c) => c.status === 'fail' && DRIFT_CHECKS.has(c.code));
  if (!hardFailure && driftFailure && improvement?.beyondNoise === true)
    for (const c of checks)
      if (c.status === 'fail' && DRIFT_CHECKS.has(c.code)) {
        c.status = 'overridden';
        c.message += ': promoted anyway, the holdout shows the candidate better beyond noise';
      }
  // The audit switched off (plain FedAvg): it records, only what can never be promoted rejects.
  if (policy.enforce === false)
    for (const c of checks)
      if (c.status === 'fail' && !ALWAYS_ENFORCED.has(c.code)) {
        c.status = 'overridden';
        c.message += ': recorded only, the drift audit is off (audit.enforce false)';
      }
  const decision = checks.some((c) => c.status === 'fail') ? 'reject' : 'promote';
  const messages = (status: AuditCheck['status']) =>
    checks.filter((c) => c.status === status).map((c) => c.message);

  const cosines = findings.map((f) => f.cosine);
  const scales = (input.trustRegion ?? []).map((t) => t.scale);
  return {
    decision,
    terminal,
    checks,
    reasons: [...messages('fail'), ...messages('overridden'), ...flagLines, ...messages('pass')],
    findings,
    summary: {
      updateCount,
      flaggedCount: flagged.length,
      flaggedFraction,
      norms,
      normScale: normScale(findings.filter((f) => !isFlagged(f)).map((f) => f.norm)),
      cosineToReference: cosines.length === 0 ? null : { min: Math.min(...cosines), median: median(cosines) },
      maxModuleDrift,
      trustRegionScale: scales.length === 0 ? null : Math.min(...scales),
      holdout,
      improvement,
      privacy,
    },
  };
}
