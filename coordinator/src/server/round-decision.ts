import type { RoundOutcome } from '../shared/round-outcomes.js';
import { TERMINAL_STATES } from './round-machine.js';
import type { RoundManagerDeps } from './round-manager-deps.js';
import type { RoundRecord } from './round-store.js';

// How the worker's decision reaches the round. The decision is taken in the worker
// (worker/job/finish-round.ts) and published as a RoundOutcome (shared/round-outcomes.ts): stored
// under the round, then sent on the outcomes channel. The driving coordinator applies it here,
// when it hears it (coordinator.ts subscribes) or, after a takeover, when it finds an AGGREGATING
// round whose outcome is stored (RoundManager.recover). Applying it twice changes nothing.

/**
 * AGGREGATING -> COMMITTED | REJECTED with the worker's reasons, told to the fleet (`round:closed`,
 * and `adapter:promoted` for a promotion). Returns the round as it was before, or null when the
 * round is unknown, already decided, or was moved by someone else (nothing told then).
 */
export async function applyDecision(
  deps: Pick<RoundManagerDeps, 'rounds' | 'fleet' | 'logger'>,
  outcome: RoundOutcome,
): Promise<RoundRecord | null> {
  const round = await deps.rounds.get(outcome.roundId);
  if (!round || TERMINAL_STATES.includes(round.state)) return null;
  const moved = await deps.rounds.transition(outcome.roundId, ['AGGREGATING'], outcome.decision, {
    reason: outcome.reasons.join('; ').slice(0, 2000),
    decidedAt: Date.now(),
  });
  if (!moved) return null;
  deps.logger
    .child({ roundId: outcome.roundId })
    .info({ decision: outcome.decision, version: outcome.version }, 'round decided');
  const reason = outcome.reasons.join('; ').slice(0, 500);
  deps.fleet.broadcast('round:closed', {
    roundId: outcome.roundId,
    taskId: outcome.taskId,
    state: outcome.decision,
    ...(reason ? { reason } : {}),
  });
  if (outcome.decision === 'COMMITTED' && outcome.version !== null && outcome.manifestDigest !== null)
    deps.fleet.broadcast('adapter:promoted', {
      taskId: outcome.taskId,
      version: outcome.version,
      manifestDigest: outcome.manifestDigest,
    });
  return round;
}
