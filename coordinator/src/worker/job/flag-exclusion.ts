// `audit.excludeFlagged` (never in a DP task): the per-update screen runs before the aggregate,
// and the updates it flags are left out of it, so a flagged update moves nothing instead of being
// only recorded while the strategy still takes it (a coordinate-wise median keeps part of the
// push of 4 flipped updates among 10). The round log keeps every accepted update as a participant,
// the left-out ones with weight 0 and their indices in `strategyOptions.screenedOut`, so an
// auditor's recomputation leaves out the same ones; the audit reuses these findings.
import type { AggregateUpdateRef } from '../../shared/queues.js';
import { isFlagged, screenRoundUpdates, type UpdateFinding } from '../audit/index.js';
import { firstNonFinite } from '../strategies/checks.js';
import type { RoundContext } from './round-context.js';
import { screenContext, type FlatUpdates } from './screen-context.js';

export interface FlagExclusion {
  /** The screen's findings for every loaded update, in aggregation order. */
  findings: UpdateFinding[];
  /** Indices (in aggregation order) of the flagged updates left out of the aggregate. */
  excluded: number[];
}

/**
 * Screens the round's updates before the aggregate when the task leaves flagged updates out;
 * null otherwise (or when an update is not finite: the audit then rejects the round). When every
 * update is flagged none is left out: there would be nothing to aggregate, and the
 * flagged-fraction check decides.
 */
export async function screenBeforeAggregate(
  ctx: RoundContext,
  loaded: readonly AggregateUpdateRef[],
  perUpdate: FlatUpdates,
): Promise<FlagExclusion | null> {
  const { policy } = ctx.task;
  if (policy.audit.excludeFlagged !== true || policy.dp) return null;
  if (!perUpdate.updates.every((u) => u.every((t) => firstNonFinite(t) < 0))) return null;
  const findings = screenRoundUpdates(
    {
      updates: perUpdate.updates,
      labels: loaded.map((u) => u.devicePseudonym),
      ...(await screenContext(ctx, perUpdate)),
    },
    policy.audit,
  );
  const flagged = findings.filter(isFlagged).map((f) => f.index);
  return { findings, excluded: flagged.length === findings.length ? [] : flagged };
}

/** The indices of `count` updates that stay in the aggregate. */
export function keptIndices(count: number, exclusion: FlagExclusion | null): number[] {
  const excluded = new Set(exclusion?.excluded ?? []);
  return Array.from({ length: count }, (_, i) => i).filter((i) => !excluded.has(i));
}
