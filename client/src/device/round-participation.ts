import { FlotillaError, type LogLeaf, type RoundPlan } from '@flotilla/protocol';
import type { DeviceEventReporter } from './device-events.js';
import { checkInclusion, type AnsweredUpdate, type InclusionCheckContext } from './inclusion-check.js';
import { runRound, trainedEvent, type RunRoundInput } from './round.js';
import { callWithAck } from './socket-call.js';
import { submitUntilAnswered, type SubmitContext } from './submit-update.js';

export interface ParticipationContext
  extends Omit<RunRoundInput, 'plan'>, SubmitContext, Omit<InclusionCheckContext, 'socket'> {
  events: DeviceEventReporter;
  /** The authenticated socket now, or null while there is none (for the inclusion check). */
  currentSocket: InclusionCheckContext['socket'];
}

/**
 * The device's part in a round it was given a plan for: run the round (train, clip, sign), then
 * answer the coordinator, `update:skip` for a skip or upload and `update:submit` for an update,
 * and tell the owner's callbacks how it went; the answer's place in the round log (an accepted
 * update, or a refusal with its reason) is then checked in the background. Resolves `finished` once the coordinator answered or the round's
 * deadline passed, `stopped` when the device stopped first (nothing more is sent then); never
 * throws.
 */
export async function takePartInRound(
  plan: RoundPlan,
  context: ParticipationContext,
): Promise<'finished' | 'stopped'> {
  const { events, logger } = context;
  events.emit((e) => e.onRound?.(plan));
  const outcome = await runRound({ ...context, plan });
  if (context.isStopped()) {
    // Stopped while training: nothing of this round is sent, not even a skip.
    logger.info({ roundId: plan.roundId }, 'stopped during the round; nothing sent');
    return 'stopped';
  }
  events.emit((e) => e.onTrained?.(trainedEvent(plan, outcome)));
  if (outcome.kind === 'skip') {
    const { reason, detail } = outcome.skip;
    events.emit((e) => e.onSkip?.({ plan, reason, detail }));
    const socket = await context.connection(plan.deadline);
    if (socket)
      await callWithAck(socket, 'update:skip', outcome.skip, context.ackTimeoutMs).catch((error: unknown) =>
        events.error(error, false),
      );
    return 'finished';
  }
  const result = await submitUntilAnswered(outcome.pending, context);
  if (result.kind === 'stopped') {
    logger.info({ roundId: plan.roundId }, 'stopped before the coordinator answered the update');
    return 'stopped';
  }
  const { metadata } = outcome.pending.submission;
  const check = context.options.checkInclusion !== false;
  if (result.kind === 'accepted') {
    const { receipt, duplicate } = result;
    events.emit((e) => e.onUpdateAccepted?.({ plan, receipt, duplicate }));
    const leaf = receipt?.logLeaf;
    if (leaf && check) void reportInclusion(leaf, { plan, metadata, refusal: null }, context);
    return 'finished';
  }
  const { code, message, logLeaf } = result;
  logger.warn({ roundId: plan.roundId, code, message }, 'update refused');
  events.emit((e) => e.onUpdateRefused?.({ plan, code, message }));
  if (logLeaf && check) void reportInclusion(logLeaf, { plan, metadata, refusal: code }, context);
  return 'finished';
}

/** Checks that the round log holds the answered update (accepted, or refused for its reason), and reports what it found. */
async function reportInclusion(
  leaf: LogLeaf,
  update: AnsweredUpdate,
  context: ParticipationContext,
): Promise<void> {
  const { plan, refusal } = update;
  const outcome = await checkInclusion(leaf, update, { ...context, socket: context.currentSocket });
  if (outcome === null) return;
  const answer = refusal === null ? 'was counted' : `was refused ${refusal}`;
  if (!outcome.ok)
    context.events.error(
      new FlotillaError(
        'BAD_SIGNATURE',
        `the round log does not prove update ${plan.roundId} ${answer}: ${outcome.reason}`,
      ),
      false,
    );
  else
    context.logger.info(
      { roundId: plan.roundId, refusal, treeSize: outcome.head.treeHead.treeSize },
      'inclusion verified',
    );
  context.events.emit((e) => e.onInclusionChecked?.({ plan, refusal, ...outcome }));
}
