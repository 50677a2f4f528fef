import type { RoundLogEventOf } from '@flotilla/protocol';
import { AcceptedUpdateSchema, acceptedUpdateEvent } from './accepted-update.js';
import type { RoundManagerDeps } from './round-manager-deps.js';
import type { RoundRecord } from './round-store.js';

// How a round's end goes into the round log. It is written after the round left REPORTING, so no
// update can be accepted any more: the log first gets every stored acceptance it lacks, then the
// end record counts what the log holds before it (round-events.ts). Its numbers therefore match
// the records an auditor counts, whichever process accepted or refused what, and when.

export type CloseReason = RoundLogEventOf<'round.closed'>['reason'];

/**
 * True when every selected device answered: an accepted update, a skip, or an update refused for
 * a final reason (protocol's FINAL_UPDATE_REFUSALS), which it need not be waited for to resend.
 */
export function everyoneAnswered(
  round: Pick<RoundRecord, 'acceptedCount' | 'skippedCount' | 'finalRefusedCount' | 'selectedCount'>,
): boolean {
  return round.acceptedCount + round.skippedCount + round.finalRefusedCount >= round.selectedCount;
}

/**
 * Why reporting ended: the goal was reached, or every selected device answered
 * (`everyoneAnswered`) below the goal, or the deadline passed.
 */
export function closeReason(
  round: { goalCount: number },
  accepted: number,
  allAnswered: boolean,
): CloseReason {
  if (accepted >= round.goalCount) return 'goal-reached';
  return allAnswered ? 'all-answered' : 'deadline';
}

/** The `update.accepted` events of every update stored for the round. */
async function storedAcceptances(
  deps: Pick<RoundManagerDeps, 'rounds'>,
  round: RoundRecord,
): Promise<Array<RoundLogEventOf<'update.accepted'>>> {
  const plan = round.plan;
  if (!plan) return [];
  const stored = Object.values(await deps.rounds.updates(round.roundId)).map((raw) =>
    AcceptedUpdateSchema.parse(JSON.parse(raw)),
  );
  stored.sort((a, b) => a.acceptedAt - b.acceptedAt || a.updateId.localeCompare(b.updateId));
  const where = { taskId: round.taskId, roundId: round.roundId, clipNorm: plan.clipNorm };
  return stored.map((update) => acceptedUpdateEvent(where, update));
}

/**
 * Logs what must precede the round's end record: its excluded updates (revoked devices), its
 * repeated refusals not logged yet. Returns the round's refusal total (repeats included), for a
 * coordinator without a round log.
 */
async function logBeforeEnd(
  deps: Pick<RoundManagerDeps, 'refusals' | 'exclusions' | 'rounds'>,
  round: RoundRecord,
): Promise<number> {
  // A round abandoned before its plan never opened in the log: nothing of it was logged.
  if (!round.plan) return 0;
  await deps.exclusions?.log(round);
  if (deps.refusals) return (await deps.refusals.flush(round)).refused;
  return deps.rounds.refusedCount(round.roundId);
}

/** Logs the end of a round that left REPORTING (or never reached it). */
export async function logRoundEnd(
  deps: Pick<RoundManagerDeps, 'rounds' | 'events' | 'refusals' | 'exclusions'>,
  round: RoundRecord,
  end: { kind: 'closed'; everyoneAnswered: boolean } | { kind: 'abandoned'; reason: string },
): Promise<void> {
  const refused = await logBeforeEnd(deps, round);
  const accepted = await storedAcceptances(deps, round);
  const base = { taskId: round.taskId, roundId: round.roundId, minReports: round.minReports };
  await deps.events.endRound({
    roundId: round.roundId,
    accepted,
    refusedFallback: refused,
    build: (logged) =>
      end.kind === 'closed'
        ? {
            type: 'round.closed',
            ...base,
            accepted: logged.accepted,
            refused: logged.refused,
            reason: closeReason(round, logged.accepted, end.everyoneAnswered),
          }
        : { type: 'round.abandoned', ...base, accepted: logged.accepted, reason: end.reason },
  });
}
