// Charging ε (docs/privacy.md): every noised aggregate that is computed is a release and is
// charged, promoted or not, exactly once per round, before anything about it is published; a round
// whose charge would pass the budget computes nothing and stops the task.
import { redisKeys } from '../../shared/keys.js';
import type { RoundOutcome } from '../../shared/round-outcomes.js';
import { getBlob, putByDigest } from '../hierarchical/shard-jobs.js';
import { RdpAccountant } from '../privacy/index.js';
import { dpReleaseStep, type ComputeRoundResult } from './compute-round.js';
import type { RoundContext } from './round-context.js';
import { decodeCandidate, encodeCandidate } from './round-candidate.js';
import { writeWorkerState } from './worker-state.js';

const num = (x: number): string => String(Number(x.toPrecision(4)));

/** The task's accountant as stored (empty before its first charge). */
function accountantOf(ctx: Pick<RoundContext, 'state'>): RdpAccountant {
  return ctx.state.accountant ? RdpAccountant.fromJSON(ctx.state.accountant) : new RdpAccountant();
}

/** ε the task has spent so far (this round's charge included), for the outcome; null without DP. */
export function spentPrivacy(ctx: Pick<RoundContext, 'task' | 'state'>): RoundOutcome['privacy'] {
  const dp = ctx.task.policy.dp;
  if (!dp) return null;
  return { epsilon: accountantOf(ctx).getEpsilon(dp.delta).epsilon, delta: dp.delta };
}

/**
 * Why this round must not compute its noised aggregate (charging it would take ε past the budget),
 * or null when it may. A round already charged (a retried job) is never refused.
 */
export function budgetRefusal(ctx: Pick<RoundContext, 'task' | 'job' | 'state'>): string | null {
  const dp = ctx.task.policy.dp;
  if (!dp || ctx.state.lastChargedRound === ctx.job.roundId) return null;
  const accountant = accountantOf(ctx);
  const next = accountant.epsilonAfter(dpReleaseStep(dp), dp.delta).epsilon;
  if (next <= dp.epsilonBudget) return null;
  const spent = accountant.getEpsilon(dp.delta).epsilon;
  return (
    `privacy budget exhausted: computing this round's noised aggregate would take epsilon from ${num(spent)} ` +
    `to ${num(next)} at delta ${dp.delta}, past the budget ${num(dp.epsilonBudget)}; nothing was computed ` +
    `and the task stops`
  );
}

/**
 * Stores the accountant with this round's charge, once per round: a retried job (or a resumed
 * hierarchical round) finds `lastChargedRound` set and charges nothing more. Call it as soon as the
 * noised aggregate exists, before it is logged, evaluated or promoted.
 */
export async function chargeRound(ctx: RoundContext, result: ComputeRoundResult): Promise<void> {
  if (!result.privacy || ctx.state.lastChargedRound === ctx.job.roundId) return;
  const state = { ...ctx.state, accountant: result.privacy.accountant, lastChargedRound: ctx.job.roundId };
  await writeWorkerState(ctx.deps.redis, ctx.deps.prefix, ctx.task.taskId, ctx.deps.blobs, state);
  ctx.state = state;
}

/**
 * The round's candidate, with its noised aggregate computed at most once per round: in a DP task it
 * is stored (blob, and its digest under the round) and charged before it is returned, so a retried
 * job reuses the same release instead of drawing fresh noise, a second release for one charge.
 */
export async function computeOnceAndCharge(
  ctx: RoundContext,
  compute: () => Promise<ComputeRoundResult> | ComputeRoundResult,
): Promise<ComputeRoundResult> {
  if (!ctx.task.policy.dp) return compute();
  const { deps, job } = ctx;
  const key = redisKeys(deps.prefix).roundCandidate(job.roundId);
  const digest = await deps.redis.get(key);
  let result: ComputeRoundResult;
  if (digest !== null) result = decodeCandidate(await getBlob(deps.blobs, digest, 'round candidate'));
  else {
    result = await compute();
    await deps.redis.set(key, await putByDigest(deps.blobs, encodeCandidate(result)));
  }
  await chargeRound(ctx, result);
  return result;
}
