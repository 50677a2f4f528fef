import {
  checkLogInclusion,
  type LogLeaf,
  type RoundPlan,
  type SignedTreeHead,
  type UpdateMetadata,
} from '@flotilla/protocol';
import { sleep } from './retry.js';
import { AckLostError, callWithAck, type AckEmitter } from './socket-call.js';

// After the coordinator answers an update, the device checks that the coordinator's round log
// really holds that answer: the accepted update, or the refusal with the reason it was given. It
// asks for an inclusion proof of the answer's leaf and checks it against a tree head signed by the
// coordinator key it pinned. A coordinator that answered but left the event out of the log (or
// rewrote it) cannot produce a proof that passes.

/** Waits between asks while no signed head covers the leaf yet, ms (the coordinator signs one at least every second). */
export const INCLUSION_RETRY_DELAYS_MS: readonly number[] = [250, 500, 1000, 2000, 4000, 8000];

export interface InclusionCheckContext {
  /** The authenticated socket now, or null while there is none. */
  socket(): AckEmitter | null;
  /** The coordinator key the device trusts (base64). */
  coordinatorKey(): string | null;
  ackTimeoutMs: number;
  signal: AbortSignal;
  retryDelaysMs?: readonly number[];
}

/** What the device learned about its update's place in the round log. */
export type InclusionOutcome =
  { ok: true; leafIndex: number; head: SignedTreeHead } | { ok: false; leafIndex: number; reason: string };

/** The update the device sent and how the coordinator answered it (`refusal`: the reason code, or null when accepted). */
export interface AnsweredUpdate {
  plan: RoundPlan;
  metadata: UpdateMetadata;
  refusal: string | null;
}

/** Whether the answer's record is this device's update in this round, answered this way (the coordinator could name another). */
function recordMismatch(leaf: LogLeaf, update: AnsweredUpdate): string | null {
  const event = leaf.record.event;
  const expected = update.refusal === null ? 'update.accepted' : 'update.refused';
  if (event.type !== expected) return `the answer's record is ${event.type}, not ${expected}`;
  if (event.roundId !== update.plan.roundId) return `the answer's record is for round ${event.roundId}`;
  if (event.type === 'update.refused' && event.reason !== update.refusal)
    return `the answer's record gives the reason ${event.reason}, not ${String(update.refusal)}`;
  // A DP round names updates by a commitment the device cannot open, and withholds what the update
  // says of itself (an accepted update's norm, a refused one's size); otherwise it is the digest.
  const stated = event.type === 'update.accepted' ? event.norm !== null : event.bytes !== null;
  // The form must be the one the plan promised, or a coordinator could write a non-DP round's
  // record in the DP form and skip the blob check below.
  const dp = update.plan.dp === true;
  if (dp && stated)
    return "the round plan promises differential privacy, but the answer's record states the update's values";
  if (!dp && !stated)
    return "the answer's record withholds the update's values (the DP form), but the round plan promises no differential privacy";
  const { blobDigest } = update.metadata;
  if (stated && event.blobDigest !== blobDigest)
    return `the answer's record names blob ${String(event.blobDigest)}, not this update's ${blobDigest}`;
  return null;
}

/**
 * Fetches the inclusion proof of `leaf` (`log:proof`) until a signed head covers it, and checks
 * it. Resolves null when the device stopped first; an unreachable coordinator is asked again.
 */
export async function checkInclusion(
  leaf: LogLeaf,
  update: AnsweredUpdate,
  context: InclusionCheckContext,
): Promise<InclusionOutcome | null> {
  const leafIndex = leaf.record.leafIndex;
  const mismatch = recordMismatch(leaf, update);
  if (mismatch) return { ok: false, leafIndex, reason: mismatch };
  for (const delay of [0, ...(context.retryDelaysMs ?? INCLUSION_RETRY_DELAYS_MS)]) {
    try {
      await sleep(delay, context.signal);
    } catch {
      return null;
    }
    const socket = context.socket();
    const key = context.coordinatorKey();
    if (!socket || key === null) continue;
    let inclusion;
    try {
      ({ inclusion } = await callWithAck(socket, 'log:proof', { leafIndex }, context.ackTimeoutMs));
    } catch (error) {
      if (error instanceof AckLostError) continue;
      return {
        ok: false,
        leafIndex,
        reason: `log:proof failed: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
    if (inclusion === null) continue;
    const check = checkLogInclusion({ leaf, inclusion, coordinatorKey: key });
    return check.ok
      ? { ok: true, leafIndex, head: inclusion.head }
      : { ok: false, leafIndex, reason: check.reason };
  }
  return { ok: false, leafIndex, reason: 'no signed tree head covered the update within the retry window' };
}
