import { describe, expect, it } from 'vitest';
import type { RoundLogEvent, RoundLogEventOf } from './events.js';
import {
  abandoned,
  accepted,
  audit,
  chargedAggregation,
  closed,
  dev,
  DP,
  opened,
  problemsOf,
  promotion,
  refused,
  rejection,
  roundOf,
  selected,
  TASK,
  verifyEvents,
} from '../../test/support/index.js';

// What `audit verify` checks beyond the chain: a key holder who lies must at least be consistent.
// Each tamper below rewrites one honest record (or moves one) and the whole log is signed again
// with the coordinator's own key, so hashes, chain and signatures are all valid: only the round
// rules can catch it, and they must, at the record that was changed.

/** An honest history of a DP task (z = 2, budget ε = 8): promoted, rejected, abandoned rounds. */
function honest(): RoundLogEvent[] {
  return [
    // Round 1: three accepted, one refused, promoted as version 1.
    opened(1),
    selected(1, [1, 2, 3, 4]),
    accepted(1, 1),
    refused(1, 4),
    accepted(1, 2),
    accepted(1, 3),
    closed(1, { accepted: 3, refused: 1 }),
    chargedAggregation(1, [1, 2, 3], 1),
    audit(1, 'pass'),
    promotion(1, 1),
    // Round 2: closed at the deadline below the goal, its noised candidate charged and rejected.
    opened(2, { parentVersion: 1 }),
    selected(2, [1, 2, 3]),
    accepted(2, 1),
    accepted(2, 2),
    closed(2, { accepted: 2 }, 'deadline'),
    chargedAggregation(2, [1, 2], 2),
    audit(2, 'fail'),
    rejection(2),
    // Round 3: nobody checked in. Round 4: quorum missed.
    abandoned(3, 0, 'selection timeout: 0 of 3 devices checked in'),
    opened(4, { parentVersion: 1 }),
    selected(4, [5, 6]),
    accepted(4, 5),
    refused(4, 6),
    abandoned(4, 1, 'quorum missed: 1 of 2 updates'),
    // Round 5: promoted as version 2; a late update for round 2 is refused meanwhile.
    opened(5, { parentVersion: 1 }),
    selected(5, [1, 2, 3]),
    accepted(5, 1),
    refused(2, 7, 'STALE_ROUND'),
    accepted(5, 2),
    accepted(5, 3),
    closed(5, { accepted: 3 }),
    chargedAggregation(5, [1, 2, 3], 3),
    audit(5, 'pass'),
    promotion(5, 2),
  ];
}

type Event<T extends RoundLogEvent['type']> = RoundLogEventOf<T>;

/** The index of the `n`-th (0-based) event matching `match`. */
function indexOf(events: RoundLogEvent[], match: (e: RoundLogEvent) => boolean, n = 0): number {
  const found = events.flatMap((e, i) => (match(e) ? [i] : []))[n];
  if (found === undefined) throw new Error('fixture: no such event');
  return found;
}

const is =
  <T extends RoundLogEvent['type']>(type: T, round?: number) =>
  (e: RoundLogEvent): e is Event<T> =>
    e.type === type && (round === undefined || ('roundId' in e && e.roundId === roundOf(round)));

/** Replaces the event at `index` by `change(event)` and returns [log, index]. */
function rewrite<T extends RoundLogEvent['type']>(
  type: T,
  round: number,
  change: (event: Event<T>) => RoundLogEvent,
): [RoundLogEvent[], number] {
  const events = honest();
  const index = indexOf(events, is(type, round));
  events[index] = change(events[index] as Event<T>);
  return [events, index];
}

/**
 * The honest history as a task without DP would log it: no promise, no noise, no ε, and (with
 * `norms`) each accepted update's norm, size, flag and example count stated.
 */
function withoutDp({ norms }: { norms: boolean }): RoundLogEvent[] {
  return honest().map((e): RoundLogEvent => {
    if (e.type === 'round.opened') return { ...e, dp: null };
    if (e.type === 'aggregation') return { ...e, noiseMultiplier: 0, epsilon: null, delta: null };
    if (e.type === 'update.accepted' && norms)
      return { ...e, norm: 0.5, clipped: false, bytes: 4096, numExamples: 100 };
    return e;
  });
}

/** The first problem of the tampered log: [seq, code]. */
const first = ([events]: [RoundLogEvent[], number]) => problemsOf(verifyEvents(events))[0];

describe('the honest history', () => {
  it('verifies', () => {
    const result = verifyEvents(honest());
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
  });
});

describe('ε is monotone and charged for every noised aggregation', () => {
  const epsilonOf = (events: RoundLogEvent[], round: number): number =>
    (events[indexOf(events, is('aggregation', round))] as Event<'aggregation'>).epsilon ?? NaN;

  it('a noised aggregation that was never charged (ε and the charge count stay where they were)', () => {
    const t = rewrite('aggregation', 2, (e) => ({
      ...e,
      epsilon: epsilonOf(honest(), 1),
      privacy: e.privacy ? { ...e.privacy, chargedRounds: 1 } : e.privacy,
    }));
    expect(first(t)).toEqual([t[1], 'EPSILON']);
  });

  it('the same, in a log without the privacy block (ε alone does not rise)', () => {
    const events = honest().map((e): RoundLogEvent => {
      if (e.type !== 'aggregation') return e;
      const { privacy: _privacy, ...rest } = e;
      return rest;
    });
    expect(verifyEvents(events).problems).toEqual([]);
    const at = indexOf(events, is('aggregation', 2));
    events[at] = { ...(events[at] as Event<'aggregation'>), epsilon: epsilonOf(events, 1) };
    expect(problemsOf(verifyEvents(events))[0]).toEqual([at, 'EPSILON']);
  });

  it('ε lowered below what was already spent', () => {
    const t = rewrite('aggregation', 5, (e) => ({ ...e, epsilon: epsilonOf(honest(), 1) }));
    expect(first(t)).toEqual([t[1], 'EPSILON']);
  });

  it('an ε that the round’s releases do not give, though it still rises', () => {
    const t = rewrite('aggregation', 2, (e) => ({ ...e, epsilon: (e.epsilon ?? 0) * 0.9 }));
    expect(first(t)).toEqual([t[1], 'EPSILON']);
  });

  it('a noised aggregation at ε = 0, or with no ε at all', () => {
    const zero = rewrite('aggregation', 1, (e) => ({ ...e, epsilon: 0 }));
    expect(first(zero)).toEqual([zero[1], 'EPSILON']);
    const none = rewrite('aggregation', 1, (e) => ({ ...e, epsilon: null }));
    expect(first(none)).toEqual([none[1], 'DP_MISSING']);
  });

  it('an aggregation, promoted or not, past the budget', () => {
    const t = rewrite('aggregation', 2, (e) => ({ ...e, epsilon: DP.epsilonBudget * 1.01 }));
    expect(first(t)).toEqual([t[1], 'BUDGET']);
  });
});

describe('noise parameters are the ones the task promises', () => {
  it('noise removed (z 2 → 0) while the task promises DP', () => {
    const t = rewrite('aggregation', 5, (e) => ({ ...e, noiseMultiplier: 0 }));
    expect(first(t)).toEqual([t[1], 'PRIVACY']);
    // Removed from the releases too: no noise at all, or less than promised.
    const none = rewrite('aggregation', 5, (e) => ({
      ...e,
      noiseMultiplier: 0,
      privacy: e.privacy && {
        ...e.privacy,
        releases: [{ query: 'update-sum', sensitivity: 1, noiseStd: 0 }],
      },
    }));
    expect(problemsOf(verifyEvents(none[0]))).toContainEqual([none[1], 'PRIVACY']);
    const less = rewrite('aggregation', 5, (e) => ({
      ...e,
      privacy: e.privacy && {
        ...e.privacy,
        releases: [{ query: 'update-sum', sensitivity: 1, noiseStd: 1 }],
      },
    }));
    expect(first(less)).toEqual([less[1], 'PRIVACY']);
  });

  it('noise removed from the promise as well: a round promising DP with z = 0', () => {
    const events = honest();
    const at = indexOf(events, is('round.opened', 5));
    const agg = indexOf(events, is('aggregation', 5));
    events[at] = opened(5, { parentVersion: 1, dp: { ...DP, noiseMultiplier: 0 } });
    events[agg] = { ...(events[agg] as Event<'aggregation'>), noiseMultiplier: 0 };
    expect(problemsOf(verifyEvents(events)).slice(0, 2)).toEqual([
      [at, 'PRIVACY'],
      [at, 'PRIVACY'],
    ]);
  });

  it('a weaker promise (or none) in a later round of the task, with no policy change', () => {
    const weaker = rewrite('round.opened', 5, (e) => ({ ...e, dp: { ...DP, noiseMultiplier: 0.5 } }));
    expect(first(weaker)).toEqual([weaker[1], 'PRIVACY']);
    const dropped = rewrite('round.opened', 4, (e) => ({ ...e, dp: null }));
    expect(first(dropped)).toEqual([dropped[1], 'PRIVACY']);
  });

  it('a promise may change after a policy.changed record of the task', () => {
    const events = honest();
    const at = indexOf(events, is('round.opened', 5));
    events.splice(at, 1, {
      type: 'policy.changed',
      taskId: TASK,
      previousPolicyDigest: '1'.repeat(64),
      policyDigest: '2'.repeat(64),
      changes: [{ path: 'dp.noiseMultiplier', from: 2, to: 3 }],
      reason: 'more noise',
    });
    events.splice(at + 1, 0, opened(5, { parentVersion: 1, dp: { ...DP, noiseMultiplier: 3 } }));
    events[indexOf(events, is('aggregation', 5))] = chargedAggregation(5, [1, 2, 3], [2, 2, 3]);
    expect(verifyEvents(events).problems).toEqual([]);
  });

  it('δ or the clip bound of the noise changed in an aggregation', () => {
    const delta = rewrite('aggregation', 1, (e) => ({ ...e, delta: 1e-3 }));
    expect(first(delta)).toEqual([delta[1], 'PRIVACY']);
    const clip = rewrite('aggregation', 1, (e) => ({ ...e, clipNorm: 0.1 }));
    expect(first(clip)).toEqual([clip[1], 'PRIVACY']);
  });

  it('noise or ε reported in a round without DP', () => {
    const events = withoutDp({ norms: true });
    expect(verifyEvents(events).problems).toEqual([]);
    const at = indexOf(events, is('aggregation', 2));
    events[at] = { ...(events[at] as Event<'aggregation'>), epsilon: 0.5, delta: 1e-5 };
    expect(problemsOf(verifyEvents(events))[0]).toEqual([at, 'PRIVACY']);
  });
});

describe('a DP round publishes nothing computed from one update', () => {
  it("an accepted update's norm, clipped flag, size or example count", () => {
    for (const leak of [{ norm: 0.5 }, { clipped: true }, { bytes: 4096 }, { numExamples: 120 }]) {
      const t = rewrite('update.accepted', 2, (e) => ({ ...e, ...leak }));
      expect(first(t)).toEqual([t[1], 'PRIVACY']);
    }
  });

  it("a refused update's size or clipped flag", () => {
    const t = rewrite('update.refused', 1, (e) => ({ ...e, bytes: 4096, clipped: false }));
    expect(first(t)).toEqual([t[1], 'PRIVACY']);
  });

  it('participants weighed by their example counts', () => {
    const t = rewrite('aggregation', 1, (e) => ({
      ...e,
      participants: e.participants.map((p, i) => ({ ...p, weight: 100 + i })),
    }));
    expect(first(t)).toEqual([t[1], 'PRIVACY']);
  });

  it('an audit finding naming a device', () => {
    const t = rewrite('audit', 2, (e) => ({
      ...e,
      findings: [
        { code: 'low-cosine', severity: 'warn' as const, message: 'x', device: dev(1), value: -0.5 },
      ],
    }));
    expect(first(t)).toEqual([t[1], 'PRIVACY']);
  });

  it('while a round without DP must carry each norm, or its clip bound cannot be checked', () => {
    const events = withoutDp({ norms: false });
    expect(problemsOf(verifyEvents(events))[0]).toEqual([indexOf(events, is('update.accepted', 1)), 'CLIP']);
  });
});

describe('counts add up', () => {
  it('a refusal moved to another round', () => {
    // Round 1's refusal, taken out of round 1 and put into round 2 as one of round 2's.
    const events = honest();
    const [moved] = events.splice(indexOf(events, is('update.refused', 1)), 1);
    const into = indexOf(events, is('update.accepted', 2)) + 1;
    events.splice(into, 0, { ...(moved as Event<'update.refused'>), roundId: roundOf(2) });
    expect(problemsOf(verifyEvents(events))).toEqual([
      [indexOf(events, is('round.closed', 1)), 'COUNTS'],
      [indexOf(events, is('round.closed', 2)), 'COUNTS'],
    ]);
    // The late refusal of round 2, relabelled as one of round 5 where it stands.
    const late = rewrite('update.refused', 2, (e) => ({ ...e, roundId: roundOf(5) }));
    expect(first(late)).toEqual([indexOf(late[0], is('round.closed', 5)), 'COUNTS']);
  });

  it('a refusal of a round that was not open yet', () => {
    const events = honest();
    const at = indexOf(events, is('update.refused', 1));
    events[at] = { ...(events[at] as Event<'update.refused'>), roundId: roundOf(2) };
    expect(problemsOf(verifyEvents(events))[0]).toEqual([at, 'UNKNOWN_ROUND']);
  });

  it('a round closed with more or fewer accepted or refused updates than the log holds', () => {
    const more = rewrite('round.closed', 1, (e) => ({ ...e, accepted: 4 }));
    expect(first(more)).toEqual([more[1], 'COUNTS']);
    const fewer = rewrite('round.closed', 1, (e) => ({ ...e, refused: 0 }));
    expect(first(fewer)).toEqual([fewer[1], 'COUNTS']);
    const abandonedCount = rewrite('round.abandoned', 4, (e) => ({ ...e, accepted: 0 }));
    expect(first(abandonedCount)).toEqual([abandonedCount[1], 'COUNTS']);
  });

  it('a close reason that the counts contradict', () => {
    const goal = rewrite('round.closed', 2, (e) => ({ ...e, reason: 'goal-reached' }));
    expect(first(goal)).toEqual([goal[1], 'COUNTS']);
    const deadline = rewrite('round.closed', 1, (e) => ({ ...e, reason: 'deadline' }));
    expect(first(deadline)).toEqual([deadline[1], 'COUNTS']);
  });

  it('a round closed for the deadline although every selected device had an update accepted', () => {
    const events = honest();
    events[indexOf(events, is('round.selected', 2))] = selected(2, [1, 2]);
    expect(problemsOf(verifyEvents(events))[0]).toEqual([indexOf(events, is('round.closed', 2)), 'COUNTS']);
  });

  it('an update from a device the round did not select, or two from one device', () => {
    const stranger = rewrite('update.accepted', 1, (e) => ({ ...e, device: 'dev_' + 'f'.repeat(32) }));
    expect(first(stranger)).toEqual([stranger[1], 'UNKNOWN_PARTICIPANT']);
    const events = honest();
    const at = indexOf(events, is('update.accepted', 1), 1);
    events[at] = { ...accepted(1, 1), blobDigest: '9'.repeat(64) };
    expect(problemsOf(verifyEvents(events))[0]).toEqual([at, 'COUNTS']);
  });

  it("an aggregation crediting one device's update to another, or counting a device twice", () => {
    const swapped = rewrite('aggregation', 1, (e) => ({
      ...e,
      participants: e.participants.map((p, i) =>
        i === 0
          ? { ...p, device: e.participants[1]?.device ?? p.device }
          : i === 1
            ? { ...p, device: e.participants[0]?.device ?? p.device }
            : p,
      ),
    }));
    expect(first(swapped)).toEqual([swapped[1], 'UNKNOWN_PARTICIPANT']);
    const twice = rewrite('aggregation', 1, (e) => ({
      ...e,
      participants: [...e.participants, ...e.participants.slice(0, 1)],
    }));
    expect(first(twice)).toEqual([twice[1], 'COUNTS']);
  });
});

describe('states in order', () => {
  /** Moves the event at `from` to just before `to`. */
  function move(
    from: (e: RoundLogEvent) => boolean,
    before: (e: RoundLogEvent) => boolean,
  ): [RoundLogEvent[], number] {
    const events = honest();
    const [event] = events.splice(indexOf(events, from), 1);
    if (!event) throw new Error('fixture');
    const at = indexOf(events, before);
    events.splice(at, 0, event);
    return [events, at];
  }

  it('an update accepted after its round closed', () => {
    const t = move(is('update.accepted', 1), is('aggregation', 1));
    expect(first(t)).toEqual([indexOf(t[0], is('round.closed', 1)), 'COUNTS']);
    expect(problemsOf(verifyEvents(t[0]))).toContainEqual([t[1], 'ROUND_STATE']);
  });

  it('an aggregation before its round closed, a promotion before its audit', () => {
    const early = move(is('aggregation', 1), is('round.closed', 1));
    expect(first(early)).toEqual([early[1], 'ROUND_STATE']);
    const unaudited = move(is('audit', 1), is('round.opened', 2));
    expect(first(unaudited)).toEqual([indexOf(unaudited[0], is('promotion', 1)), 'PROMOTION']);
  });

  it('a round opened while the previous one of its task awaits its decision', () => {
    const t = move(is('rejection', 2), is('round.abandoned', 4));
    expect(first(t)).toEqual([indexOf(t[0], is('round.abandoned', 3)), 'ROUND_STATE']);
  });

  it('a promotion after a rejection, a rejection after a promotion, a second different aggregation', () => {
    const events = honest();
    const at = indexOf(events, is('rejection', 2)) + 1;
    events.splice(at, 0, promotion(2, 2));
    expect(problemsOf(verifyEvents(events))[0]).toEqual([at, 'PROMOTION']);
    const again = honest();
    const after = indexOf(again, is('promotion', 1)) + 1;
    again.splice(after, 0, rejection(1));
    expect(problemsOf(verifyEvents(again))[0]).toEqual([after, 'ROUND_STATE']);
    const twice = honest();
    const second = indexOf(twice, is('audit', 1));
    twice.splice(second, 0, {
      ...chargedAggregation(1, [1, 2, 3], 1),
      aggregateDigest: 'e'.repeat(64),
    });
    expect(problemsOf(verifyEvents(twice))[0]).toEqual([second, 'ROUND_STATE']);
  });

  it('a retried job that logs the same aggregation, audit and promotion again is not a problem', () => {
    const events = honest();
    const at = indexOf(events, is('promotion', 1)) + 1;
    events.splice(
      at,
      0,
      { ...chargedAggregation(1, [1, 2, 3], 1), deltasRetainedUntil: 1 },
      audit(1, 'pass'),
      promotion(1, 1),
    );
    expect(verifyEvents(events).problems).toEqual([]);
  });

  it('a promotion naming another parent than the version the round trained from', () => {
    const t = rewrite('promotion', 5, (e) => ({ ...e, parentVersion: 0 }));
    expect(first(t)).toEqual([t[1], 'VERSION']);
  });
});
