// A large round whose strategy decomposes into sums, aggregated by shard jobs so no process holds
// every update: (1) `shard-sum` children each sum a shard of deltas, and for the drift audit take
// its median and measure each update against the others of its shard; (2) this job combines the
// sums into the weighted mean and runs the strategy on it (server optimizer, DP noise, LoRA rule);
// (3) `shard-stats` children take each update's cosine to the round's robust reference (the median
// of the shard medians), which only exists once every shard is summed; the audit's steps are
// skipped under DP, whose audit does not screen updates one by one; (4) the shared tail records,
// audits and promotes (finish-round.ts). Rounds below the threshold take single-stage-round.ts.
import { WaitingChildrenError } from 'bullmq';
import { FlotillaError, decodeFloat32Tensors, encodeFloat32Tensors } from '@flotilla/protocol';
import {
  DEFAULT_SHARD_SIZE,
  SHARD_STATS_QUEUE,
  SHARD_SUM_QUEUE,
  ShardStatsResultSchema,
  ShardSumResultSchema,
  planShards,
  shardJobId,
  type ShardStatsJobData,
  type ShardSumJobData,
  type ShardSumResult,
} from '../../shared/hierarchical-flow.js';
import type { AggregateUpdateRef } from '../../shared/queues.js';
import type { RoundOutcome } from '../../shared/round-outcomes.js';
import { getBlob, loadShardSums, putByDigest } from '../hierarchical/shard-jobs.js';
import { medianDelta } from '../hierarchical/shard-stats.js';
import { combineShardSums } from '../hierarchical/shard-sum.js';
import { l2Norm } from '../audit/index.js';
import { flattenTensors } from '../strategies/flatten.js';
import { finishRound, type FinishRoundInput } from './finish-round.js';
import { frozenTensors } from './load-updates.js';
import { refuseOverBudget, rejectBelowQuorum } from './publish-decision.js';
import type { RoundContext } from './round-context.js';
import { runCompute } from './run-compute.js';
import { decodeCandidate, encodeCandidate } from './round-candidate.js';
import { budgetRefusal, computeOnceAndCharge } from './privacy-charge.js';
import type { HierarchicalProgress, RoundJobSteps } from './round-steps.js';

export type { RoundJobSteps } from './round-steps.js';

const byDigest = (a: AggregateUpdateRef, b: AggregateUpdateRef): number =>
  a.blobDigest < b.blobDigest ? -1 : a.blobDigest > b.blobDigest ? 1 : 0;

/** Why a step cannot finish: some of its children failed for good (BullMQ ignored them). */
function childFailure(queueName: string, done: number, expected: number, failed: string[]): FlotillaError {
  const why = failed.length > 0 ? `; failed: ${failed.join('; ')}` : '';
  return new FlotillaError('INTERNAL', `${done} of ${expected} ${queueName} jobs completed${why}`);
}

/**
 * Saves progress, (re-)adds that step's children, then parks the job until they are done. Saved
 * before the children exist: a run that dies in between re-adds the same ids (a no-op) instead of
 * recomputing what the children were given. Never re-adds after a child failed for good: BullMQ
 * would count the failed child as pending again and park the job forever.
 */
async function awaitChildren(
  steps: RoundJobSteps,
  progress: HierarchicalProgress,
  queueName: string,
  children: Array<{ jobId: string; data: unknown }>,
): Promise<void> {
  await steps.save(progress);
  const failed = await steps.failedChildren(queueName);
  if (failed.length > 0)
    throw childFailure(queueName, (await steps.childrenValues(queueName)).length, children.length, failed);
  await steps.addChildren(queueName, children);
  if (await steps.waitForChildren()) throw new WaitingChildrenError();
}

/** Every child of `queueName` completed, or the round fails with the children's reasons. */
async function allResults(steps: RoundJobSteps, queueName: string, expected: number): Promise<unknown[]> {
  const values = await steps.childrenValues(queueName);
  if (values.length === expected) return values;
  throw childFailure(queueName, values.length, expected, await steps.failedChildren(queueName));
}

export async function runHierarchicalRound(ctx: RoundContext, steps: RoundJobSteps): Promise<RoundOutcome> {
  const { deps, task, job, current } = ctx;
  const shardSize = steps.progress?.shardSize ?? deps.hierarchical?.shardSize ?? DEFAULT_SHARD_SIZE;
  const shards = planShards(job.updates, shardSize);
  const expectedShapes = Object.fromEntries([...current].map(([name, t]) => [name, [...t.shape]]));
  const frozen = [...frozenTensors(task, current)];
  let progress: HierarchicalProgress = steps.progress ?? {
    step: 'summing',
    shards: shards.length,
    shardSize,
  };

  if (steps.progress === null) {
    // Before any work: a round whose noised aggregate the budget cannot pay for computes nothing.
    const refusal = budgetRefusal(ctx);
    if (refusal !== null) return refuseOverBudget(ctx, refusal);
  }
  if (progress.step === 'summing') {
    await awaitChildren(
      steps,
      progress,
      SHARD_SUM_QUEUE,
      shards.map((updates, shardIndex) => ({
        jobId: shardJobId(job.roundId, 'sum', shardIndex),
        data: {
          roundId: job.roundId,
          shardIndex,
          weighting: task.policy.dp ? 'uniform' : 'examples',
          updateWeighting: task.policy.weighting,
          expectedShapes,
          frozen,
          withMedian: !task.policy.dp,
          withPeers: !task.policy.dp,
          updates,
        } satisfies ShardSumJobData,
      })),
    );
  }
  const sums = (await allResults(steps, SHARD_SUM_QUEUE, progress.shards))
    .map((v) => ShardSumResultSchema.parse(v))
    .sort((a, b) => a.shardIndex - b.shardIndex);
  const { loaded, exclusions } = usableUpdates(job.updates, sums);
  const belowQuorum = rejectBelowQuorum(ctx, loaded.length, exclusions);
  if (belowQuorum) return belowQuorum;

  const statsShards = planShards(loaded, progress.shardSize);
  if (progress.step === 'summing') {
    const { mean } = combineShardSums(
      await loadShardSums(
        deps.blobs,
        sums.map((s) => s.sumDigest),
      ),
    );
    // Stored and charged at once: a run that dies before saving the progress reuses this candidate.
    const result = await computeOnceAndCharge(ctx, () =>
      runCompute(deps, job.roundId, {
        task,
        current,
        updates: loaded.map((u) => ({ numExamples: u.numExamples, norm: u.norm, clipped: u.clipped })),
        mean,
        clipNorm: job.clipNorm,
        optimizerState: ctx.state.optimizer,
        accountant: ctx.state.accountant,
      }),
    );
    const screening = !task.policy.dp;
    progress = {
      ...progress,
      step: 'auditing',
      candidateDigest: await putByDigest(deps.blobs, encodeCandidate(result)),
      referenceDigest: screening ? await roundReference(deps.blobs, sums, job.roundId) : null,
      statsShards: screening ? statsShards.length : 0,
    };
  }
  const { referenceDigest } = progress;
  let perUpdate: FinishRoundInput['perUpdate'];
  // Saved before the audit in every case: a resumed job must read this candidate back, never
  // recompute it (that would redraw the DP noise).
  if (referenceDigest === null) await steps.save(progress);
  else {
    // Also on resume: children lost to a crash before they were added are added now.
    await awaitChildren(
      steps,
      progress,
      SHARD_STATS_QUEUE,
      statsShards.map((updates, shardIndex) => ({
        jobId: shardJobId(job.roundId, 'stats', shardIndex),
        data: {
          roundId: job.roundId,
          shardIndex,
          expectedShapes,
          frozen,
          updates,
          referenceDigest,
        } satisfies ShardStatsJobData,
      })),
    );
    const cosines = (await allResults(steps, SHARD_STATS_QUEUE, progress.statsShards))
      .map((v) => ShardStatsResultSchema.parse(v))
      .sort((a, b) => a.shardIndex - b.shardIndex)
      .flatMap((r) => r.updates);
    if (cosines.length !== loaded.length || cosines.some((s, i) => s.updateId !== loaded[i]?.updateId))
      throw new FlotillaError('INTERNAL', 'the audit pass does not cover the aggregated updates in order');
    const peers = new Map(sums.flatMap((s) => s.peers ?? []).map((p) => [p.updateId, p]));
    const reference = decodeFloat32Tensors(await getBlob(deps.blobs, referenceDigest, 'round reference'));
    const flatReference = flattenTensors(reference.tensors).values;
    perUpdate = {
      stats: {
        perUpdate: cosines.map(({ updateId, cosine }) => {
          const peer = peers.get(updateId);
          if (peer === undefined)
            throw new FlotillaError('INTERNAL', `the sum pass did not screen update ${updateId}`);
          const { norm, othersCosine, nearestDistance } = peer;
          return { norm, cosine, othersCosine, nearestDistance };
        }),
        referenceNorm: l2Norm([flatReference]),
        dimension: flatReference.length,
      },
    };
  }
  const result = decodeCandidate(await getBlob(deps.blobs, progress.candidateDigest, 'round candidate'));
  return finishRound(ctx, {
    loaded,
    exclusions,
    result,
    ...(perUpdate ? { perUpdate } : {}),
    hierarchical: { shardSize: progress.shardSize, counts: sums.map((s) => s.count) },
  });
}

/** The audit's robust reference: the coordinate-wise median of the shard medians, stored by digest. */
async function roundReference(
  blobs: RoundContext['deps']['blobs'],
  sums: readonly ShardSumResult[],
  roundId: string,
): Promise<string> {
  const medians = [];
  for (const s of sums)
    if (s.medianDigest !== null)
      medians.push(decodeFloat32Tensors(await getBlob(blobs, s.medianDigest, 'shard median')).tensors);
  return putByDigest(blobs, encodeFloat32Tensors(medianDelta(medians), { 'flotilla.round': roundId }, 'F32'));
}

/** The refs the shard jobs could load, in aggregation order, and why the others were left out. */
function usableUpdates(
  refs: readonly AggregateUpdateRef[],
  sums: readonly ShardSumResult[],
): { loaded: AggregateUpdateRef[]; exclusions: string[] } {
  // Reasons in the job's order, as a single-stage round lists them.
  const position = new Map(refs.map((r, i) => [r.updateId, i]));
  const excluded = sums
    .flatMap((s) => s.excluded)
    .sort((a, b) => (position.get(a.updateId) ?? 0) - (position.get(b.updateId) ?? 0));
  const dropped = new Set(excluded.map((e) => e.updateId));
  return {
    loaded: refs.filter((r) => !dropped.has(r.updateId)).sort(byDigest),
    exclusions: excluded.map((e) => `update ${e.updateId} excluded (${e.code}): ${e.reason}`),
  };
}
