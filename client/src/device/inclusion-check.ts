import { checkLogInclusion, type LogLeaf, type RoundPlan, type SignedTreeHead } from '@flotilla/protocol';
import { sleep } from './retry.js';
import { AckLostError, callWithAck, type AckEmitter } from './socket-call.js';

// After an update is accepted, the device checks that the coordinator's round log really holds
// it: it asks for an inclusion proof of its receipt's leaf and checks it against a tree head
// signed by the coordinator key it pinned. A coordinator that acknowledged an update but left it
// out of the log (or rewrote it) cannot produce a proof that passes.

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

/** Whether the receipt's record is this device's update in this round (the coordinator could name another). */
function recordMismatch(leaf: LogLeaf, plan: RoundPlan, blobDigest: string): string | null {
  const event = leaf.record.event;
  if (event.type !== 'update.accepted')
    return `the receipt's record is a ${event.type}, not an update.accepted`;
  if (event.roundId !== plan.roundId) return `the receipt's record is for round ${event.roundId}`;
  // A DP round names updates by a commitment the device cannot open; otherwise it is the digest.
  if (event.norm !== null && event.blobDigest !== blobDigest)
    return `the receipt's record names blob ${event.blobDigest}, not this update's ${blobDigest}`;
  return null;
}

/**
 * Fetches the inclusion proof of `leaf` (`log:proof`) until a signed head covers it, and checks
 * it. Resolves null when the device stopped first; an unreachable coordinator is asked again.
 */
export async function checkInclusion(
  leaf: LogLeaf,
  update: { plan: RoundPlan; blobDigest: string },
  context: InclusionCheckContext,
): Promise<InclusionOutcome | null> {
  const leafIndex = leaf.record.leafIndex;
  const mismatch = recordMismatch(leaf, update.plan, update.blobDigest);
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
