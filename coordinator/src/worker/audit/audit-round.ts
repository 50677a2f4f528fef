import { FlotillaError, type AuditPolicy } from '@flotilla/protocol';
import { firstNonFinite } from '../strategies/checks.js';
import { l2Norm, updateSimilarities, type TensorList, type UpdateSimilarity } from './cosine.js';
import { compareOnHoldout, type HoldoutComparison, type HoldoutMetrics } from './holdout.js';
import type { ModuleDrift } from './module-drift.js';
import { median, modifiedZScores, summarizeNorms, type NormSummary } from './norm-stats.js';

/** Everything the drift audit looks at for one round's candidate. */
export interface AuditRoundInput {
  /** Each accepted update's tensors (same order and sizes as `aggregate`). Or give `similarities`. */
  updates?: readonly TensorList[];
  /**
   * Each accepted update's cosines, computed elsewhere (a hierarchical round's shard jobs), in
   * place of `updates`; then `norms` is required.
   */
  similarities?: readonly UpdateSimilarity[];
  /** Names for the reasons (e.g. pseudonyms or update ids). Default `update #<index>`. */
  labels?: readonly string[];
  /** Update norms to screen (e.g. the reported pre-clip norms). Default: L2 norms of `updates`. */
  norms?: readonly number[];
  /** Weights (e.g. example counts) for the leave-one-out means. Default equal. */
  weights?: readonly number[];
  /** The candidate aggregate delta. */
  aggregate: TensorList;
  /** Per-module drift of the candidate adapter from the base ({@link loraModuleDrift}, {@link biasModuleDrift}). */
  moduleDrift?: readonly ModuleDrift[];
  /** Candidate and current adapter on the server holdout. */
  holdout?: { candidate: HoldoutMetrics; current: HoldoutMetrics };
  /** ε for `delta` once this round is accounted, and the task's budget. */
  privacy?: { epsilon: number; epsilonBudget: number; delta: number };
}

/** Per-update flags. `lowCosine` is decided on the leave-one-out cosine (aggregate cosine for a single update). */
export interface UpdateFinding {
  index: number;
  label: string;
  norm: number;
  modifiedZ: number;
  /** Cosine to the candidate aggregate. */
  cosine: number;
  /** Cosine to the weighted mean of the other updates; null with a single update. */
  leaveOneOutCosine: number | null;
  normOutlier: boolean;
  lowCosine: boolean;
}

export interface AuditSummary {
  updateCount: number;
  flaggedCount: number;
  flaggedFraction: number;
  norms: NormSummary | null;
  cosineToAggregate: { min: number; median: number } | null;
  /** Module with the largest drift. */
  maxModuleDrift: ModuleDrift | null;
  holdout: HoldoutComparison | null;
  privacy: { epsilon: number; epsilonBudget: number; delta: number } | null;
}

export interface AuditResult {
  decision: 'promote' | 'reject';
  /** Sentences for the auditor: failed checks first, then flagged updates, then passed checks. */
  reasons: string[];
  findings: UpdateFinding[];
  summary: AuditSummary;
}

const num = (x: number): string => (Number.isFinite(x) ? String(Number(x.toPrecision(4))) : String(x));

function allFinite(tensors: TensorList): boolean {
  return tensors.every((t) => firstNonFinite(t) < 0);
}

function findingsFor(
  input: AuditRoundInput,
  similarities: readonly UpdateSimilarity[],
  policy: AuditPolicy,
): UpdateFinding[] {
  const norms = input.norms ?? input.updates?.map((u) => l2Norm(u)) ?? [];
  if (norms.length !== similarities.length)
    throw new FlotillaError('BAD_REQUEST', 'one norm per update is required');
  const scores = modifiedZScores(norms);
  return similarities.map(({ cosine, leaveOneOutCosine }, index) => {
    const modifiedZ = scores[index] ?? 0;
    return {
      index,
      label: input.labels?.[index] ?? `update #${index}`,
      norm: norms[index] ?? Number.NaN,
      modifiedZ,
      cosine,
      leaveOneOutCosine,
      normOutlier: modifiedZ > policy.madThreshold,
      lowCosine: (leaveOneOutCosine ?? cosine) < policy.minCosine,
    };
  });
}

function describeFlags(f: UpdateFinding, policy: AuditPolicy, medianNorm: number): string[] {
  const lines: string[] = [];
  if (f.normOutlier) {
    lines.push(
      `${f.label}: norm ${num(f.norm)} is a MAD outlier (modified z-score ${num(f.modifiedZ)} > ${num(policy.madThreshold)}; median norm ${num(medianNorm)})`,
    );
  }
  if (f.lowCosine) {
    const which = f.leaveOneOutCosine === null ? 'the aggregate' : 'the mean of the other updates';
    lines.push(
      `${f.label}: points away from ${which} (cosine ${num(f.leaveOneOutCosine ?? f.cosine)} < ${num(policy.minCosine)}; cosine to the aggregate ${num(f.cosine)})`,
    );
  }
  return lines;
}

/**
 * The drift audit of one round's candidate: flags updates with MAD-outlier norms or a low
 * leave-one-out cosine, and rejects the candidate when too many are flagged, a module drifted
 * past `maxModuleDrift`, the holdout accuracy dropped past `maxAccuracyDrop`, the privacy budget
 * would be exceeded, or the inputs are empty or not finite. Pure: it decides and explains.
 */
export function auditRound(input: AuditRoundInput, policy: AuditPolicy): AuditResult {
  const failures: string[] = [];
  const passes: string[] = [];
  if (input.updates !== undefined && input.similarities !== undefined)
    throw new FlotillaError('BAD_REQUEST', 'give the updates or their similarities, not both');
  const updates = input.updates ?? [];
  const given = input.similarities ?? [];
  const updateCount = input.updates?.length ?? given.length;
  let findings: UpdateFinding[] = [];

  if (updateCount === 0) failures.push('no updates to audit');
  else if (
    !updates.every(allFinite) ||
    !given.every((s) => Number.isFinite(s.cosine) && Number.isFinite(s.leaveOneOutCosine ?? 0)) ||
    !allFinite(input.aggregate) ||
    !(input.norms ?? []).every((n) => Number.isFinite(n))
  ) {
    failures.push('an update, its norm or the aggregate contains NaN or infinite values');
  } else {
    const similarities = input.similarities ?? updateSimilarities(updates, input.aggregate, input.weights);
    findings = findingsFor(input, similarities, policy);
  }

  const flagged = findings.filter((f) => f.normOutlier || f.lowCosine);
  const flaggedFraction = findings.length === 0 ? 0 : flagged.length / findings.length;
  const norms = findings.length === 0 ? null : summarizeNorms(findings.map((f) => f.norm));
  const flagLines = flagged.flatMap((f) => describeFlags(f, policy, norms?.median ?? Number.NaN));
  if (findings.length > 0) {
    const line = `${flagged.length} of ${findings.length} updates flagged (${num(100 * flaggedFraction)}%, limit ${num(100 * policy.maxFlaggedFraction)}%)`;
    (flaggedFraction > policy.maxFlaggedFraction ? failures : passes).push(line);
  }

  let maxModuleDrift: ModuleDrift | null = null;
  for (const d of input.moduleDrift ?? []) {
    if (maxModuleDrift === null || !(d.drift <= maxModuleDrift.drift)) maxModuleDrift = d;
    if (!(d.drift <= policy.maxModuleDrift)) {
      const why = d.baseNorm === 0 ? ' (the base weight is all zeros)' : '';
      failures.push(
        `module ${d.module} (${d.kind}) drifted ${num(d.drift)} from the base, above the limit ${num(policy.maxModuleDrift)}${why}`,
      );
    }
  }
  if (maxModuleDrift !== null && maxModuleDrift.drift <= policy.maxModuleDrift) {
    passes.push(
      `largest module drift ${num(maxModuleDrift.drift)} (${maxModuleDrift.module}) within ${num(policy.maxModuleDrift)}`,
    );
  }

  let holdout: HoldoutComparison | null = null;
  if (input.holdout !== undefined) {
    holdout = compareOnHoldout({ ...input.holdout, maxAccuracyDrop: policy.maxAccuracyDrop });
    (holdout.pass ? passes : failures).push(holdout.reason);
  }

  const privacy = input.privacy ?? null;
  if (privacy !== null) {
    const spent = `epsilon ${num(privacy.epsilon)} at delta ${privacy.delta}`;
    if (!(privacy.epsilon <= privacy.epsilonBudget)) {
      failures.push(
        `privacy budget exhausted: ${spent} would exceed the budget ${num(privacy.epsilonBudget)}`,
      );
    } else passes.push(`privacy: ${spent} within the budget ${num(privacy.epsilonBudget)}`);
  }

  const cosines = findings.map((f) => f.cosine);
  return {
    decision: failures.length === 0 ? 'promote' : 'reject',
    reasons: [...failures, ...flagLines, ...passes],
    findings,
    summary: {
      updateCount,
      flaggedCount: flagged.length,
      flaggedFraction,
      norms,
      cosineToAggregate: cosines.length === 0 ? null : { min: Math.min(...cosines), median: median(cosines) },
      maxModuleDrift,
      holdout,
      privacy,
    },
  };
}
