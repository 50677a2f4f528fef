// The end of every round, whatever decided it: the rejection streak, stopping the task, the
// rejection record in the round log, and the outcome published to the coordinator.
import { publishRoundOutcome, type RoundOutcome } from '../../shared/round-outcomes.js';
import { stopTask } from '../../shared/task-stop.js';
import { spentPrivacy } from './privacy-charge.js';
import { clearRejections, recordRejection } from './rejection-streak.js';
import type { RoundContext } from './round-context.js';

/**
 * Settles the round: records a rejection (with every reason) in the round log and publishes the
 * decision to the server. With `stopTask`, or at the policy's `maxConsecutiveRejections`-th
 * rejection since the last promotion, stops the task first. A promotion ends the rejection streak.
 */
export async function recordAndPublishDecision(
  ctx: Pick<RoundContext, 'deps' | 'task' | 'job' | 'state'>,
  options: {
    decision: RoundOutcome['decision'];
    reasons: string[];
    version: number | null;
    manifestDigest: string | null;
    /** Why the task must stop: no round of it opens after this one (shared/task-stop.ts). */
    stopTask?: string;
  },
): Promise<RoundOutcome> {
  const { deps, task, job } = ctx;
  let stopReason = options.stopTask;
  let reasons = options.reasons.length > 0 ? options.reasons : ['all checks passed'];
  if (options.decision === 'REJECTED') {
    const streak = await recordRejection(deps.redis, deps.prefix, job);
    const limit = task.policy.audit.maxConsecutiveRejections;
    if (stopReason === undefined && limit > 0 && streak >= limit) {
      stopReason = `the task stops: ${streak} rejections in a row since the last promotion (maxConsecutiveRejections ${limit})`;
      reasons = [stopReason, ...reasons];
    }
  } else await clearRejections(deps.redis, deps.prefix, job);
  // Stored before the outcome is published: the coordinator reads it when it opens the next round.
  if (stopReason !== undefined)
    await stopTask(deps.redis, deps.prefix, task.taskId, {
      reason: stopReason,
      roundId: job.roundId,
      at: Date.now(),
    });
  const outcome: RoundOutcome = {
    taskId: task.taskId,
    roundId: job.roundId,
    decision: options.decision,
    version: options.version,
    manifestDigest: options.manifestDigest,
    reasons,
    privacy: spentPrivacy(ctx),
    ...(stopReason !== undefined ? { stopTask: stopReason } : {}),
  };
  if (options.decision === 'REJECTED') await deps.roundLog.rejection({ task, job, reasons: outcome.reasons });
  await publishRoundOutcome(deps.redis, deps.prefix, outcome);
  return outcome;
}

/**
 * Rejects the round without computing anything and stops the task (the coordinator opens no
 * further round), with `reason` first among the reasons.
 */
export function refuseOverBudget(
  ctx: RoundContext,
  reason: string,
  exclusions: string[] = [],
): Promise<RoundOutcome> {
  return recordAndPublishDecision(ctx, {
    decision: 'REJECTED',
    reasons: [reason, ...exclusions],
    version: null,
    manifestDigest: null,
    stopTask: reason,
  });
}

/** Rejects a round left with fewer usable updates than its quorum (`minReports`); null if it has it. */
export function rejectBelowQuorum(
  ctx: RoundContext,
  usable: number,
  exclusions: string[],
): Promise<RoundOutcome> | null {
  const quorum = ctx.task.rounds.minReports;
  if (usable >= quorum) return null;
  return recordAndPublishDecision(ctx, {
    decision: 'REJECTED',
    reasons: [`only ${usable} usable update(s), quorum is ${quorum}`, ...exclusions],
    version: null,
    manifestDigest: null,
  });
}
