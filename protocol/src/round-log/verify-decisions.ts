import { canonicalJson } from '../canonical-json.js';
import type { RoundLogEventOf } from './events.js';
import { EPSILON_TOLERANCE, type Fail, type RoundState } from './verify-state.js';

// The end of a closed round: its drift audit, then one decision (a promotion or a rejection). A
// retried worker job may log the same audit or decision again; anything else after the decision
// is out of order.

type DecisionEvent = RoundLogEventOf<'audit' | 'promotion' | 'rejection'>;

const same = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b);

export function checkDecision(
  task: { latestVersion: number },
  round: RoundState,
  opened: RoundLogEventOf<'round.opened'>,
  event: DecisionEvent,
  fail: Fail,
): void {
  const id = event.roundId;
  if (round.decision !== null) {
    // Logged again by a retried job: harmless when it repeats the decision, else contradictory.
    if (event.type !== 'audit' && !same(round.decision, event))
      fail(
        event.type === 'promotion' ? 'PROMOTION' : 'ROUND_STATE',
        `round ${id} has a ${event.type} after its ${round.decision.type}`,
      );
    else if (event.type === 'audit' && round.audit !== null && !same(round.audit, event))
      fail('ROUND_STATE', `round ${id} is audited again after its ${round.decision.type}`);
    return;
  }
  switch (event.type) {
    case 'audit':
      if (round.aggregation === null) fail('ROUND_STATE', `round ${id} is audited without an aggregation`);
      round.audit = event;
      return;
    case 'rejection':
      if (round.status !== 'closed')
        fail('ROUND_STATE', `round ${id} is rejected while ${round.status}, not closed`);
      round.decision = event;
      return;
    case 'promotion':
      checkPromotion(task, round, opened, event, fail);
      round.decision = event;
      return;
  }
}

function checkPromotion(
  task: { latestVersion: number },
  round: RoundState,
  opened: RoundLogEventOf<'round.opened'>,
  event: RoundLogEventOf<'promotion'>,
  fail: Fail,
): void {
  const id = event.roundId;
  if (round.status === 'abandoned')
    fail('PROMOTION', `promotion of version ${event.version} from abandoned round ${id}`);
  else if (round.status === 'open')
    fail('PROMOTION', `promotion of version ${event.version} from round ${id}, which was never closed`);
  else if ((round.closed?.accepted ?? 0) < opened.minReports)
    fail('QUORUM', `promotion from round ${id}, which closed without quorum`);
  const aggregation = round.aggregation;
  if (aggregation === null) fail('PROMOTION', `promotion from round ${id}, which has no aggregation record`);
  else if (round.audit === null)
    fail('PROMOTION', `promotion from round ${id}, whose candidate was never audited`);
  else if (round.audit.decision !== 'pass')
    fail('PROMOTION', `promotion from round ${id}, whose audit failed`);
  const dp = opened.dp;
  if (
    dp !== null &&
    aggregation?.epsilon != null &&
    aggregation.epsilon > dp.epsilonBudget * (1 + EPSILON_TOLERANCE)
  )
    fail(
      'BUDGET',
      `promotion from round ${id} at ε=${aggregation.epsilon}, past the budget ${dp.epsilonBudget}`,
    );
  if (event.parentVersion !== opened.parentVersion)
    fail(
      'VERSION',
      `promotion from round ${id} names parent version ${event.parentVersion}, the round trained from ${opened.parentVersion}`,
    );
  if (event.version <= task.latestVersion)
    fail(
      'VERSION',
      `promotion of version ${event.version}, not after the latest version ${task.latestVersion}`,
    );
  task.latestVersion = Math.max(task.latestVersion, event.version);
}
