// A round aggregated in this process: every update is loaded and screened here. Its counterpart
// for large rounds, summed by shard jobs, is hierarchical-round.ts; both end in finish-round.ts.
import type { RoundOutcome } from '../../shared/round-outcomes.js';
import { flattenTensors, type TensorLayout } from '../strategies/flatten.js';
import { at } from '@flotilla/protocol';
import { finishRound } from './finish-round.js';
import { keptIndices, screenBeforeAggregate } from './flag-exclusion.js';
import { frozenTensors, loadUpdates } from './load-updates.js';
import { budgetRefusal, computeOnceAndCharge } from './privacy-charge.js';
import { refuseOverBudget, rejectBelowQuorum } from './publish-decision.js';
import type { RoundContext } from './round-context.js';
import { runCompute } from './run-compute.js';

/**
 * Loads the round's updates (excluding bad ones with reasons), checks the quorum and the privacy
 * budget, screens them first when the task leaves flagged updates out, computes the candidate
 * (once per round under DP) and hands it to the shared tail.
 */
export async function runSingleStageRound(ctx: RoundContext): Promise<RoundOutcome> {
  const { deps, task, job, current } = ctx;
  const loadedUnsorted = await loadUpdates({
    refs: job.updates,
    blobs: deps.blobs,
    expected: current,
    frozen: frozenTensors(task, current),
  });
  // Arrival order varies from run to run; sorting by content makes float sums reproducible.
  const loaded = [...loadedUnsorted.loaded].sort((a, b) =>
    a.ref.blobDigest < b.ref.blobDigest ? -1 : a.ref.blobDigest > b.ref.blobDigest ? 1 : 0,
  );
  const exclusions = loadedUnsorted.excluded.map(
    (e) => `update ${e.ref.updateId} excluded (${e.code}): ${e.reason}`,
  );
  const belowQuorum = rejectBelowQuorum(ctx, loaded.length, exclusions);
  if (belowQuorum) return belowQuorum;
  const refusal = budgetRefusal(ctx);
  if (refusal !== null) return refuseOverBudget(ctx, refusal, exclusions);
  const perUpdate = flattenedUpdates(loaded.map((u) => u.delta));
  const refs = loaded.map((u) => u.ref);
  // With audit.excludeFlagged the screen runs first and the strategy sees only unflagged updates.
  const screened = await screenBeforeAggregate(ctx, refs, perUpdate);
  const kept = keptIndices(loaded.length, screened);
  const computed = await computeOnceAndCharge(ctx, () =>
    runCompute(deps, job.roundId, {
      task,
      current,
      updates: kept.map((i) => {
        const u = at(loaded, i);
        return { delta: u.delta, numExamples: u.ref.numExamples, norm: u.ref.norm, clipped: u.ref.clipped };
      }),
      clipNorm: job.clipNorm,
      optimizerState: ctx.state.optimizer,
      accountant: ctx.state.accountant,
    }),
  );
  // `selected` indexes the updates the strategy saw (all of them when empty): map it to `loaded`.
  const selected = computed.selected.length === 0 ? kept : computed.selected.map((i) => at(kept, i));
  const result = screened ? { ...computed, selected } : computed;
  return finishRound(ctx, { loaded: refs, exclusions, result, perUpdate, screened });
}

/** Each update flattened, and their common layout (the one of the first update). */
function flattenedUpdates(deltas: ReadonlyArray<Parameters<typeof flattenTensors>[0]>): {
  updates: Float32Array[][];
  layout?: TensorLayout;
} {
  const flat = deltas.map((d) => flattenTensors(d));
  const layout = flat[0]?.layout;
  return { updates: flat.map((f) => [f.values]), ...(layout ? { layout } : {}) };
}
