import { canonicalJson } from '../canonical-json.js';
import type { RoundLogEventOf } from './events.js';
import { EPSILON_TOLERANCE, type Fail, type TaskPrivacy } from './verify-state.js';

// What a task promises about privacy, and whether each aggregation keeps the promise: the noise
// the task promised (z, δ, the clip bound the noise is scaled to), and ε that never goes down, is
// charged for every noised aggregation, and never passes the budget. (verify.ts adds ε recomputed
// from each round's releases, when the records carry them.)

/** Relative tolerance for the noise multiplier and δ, which are copied, not computed. */
const PARAMETER_TOLERANCE = 1e-12;

const close = (a: number, b: number): boolean =>
  Math.abs(a - b) <= PARAMETER_TOLERANCE * Math.max(1, Math.abs(b));

/** Every round of a task promises the same privacy, until a `policy.changed` of that task. */
export function checkRoundPromise(
  privacy: TaskPrivacy,
  event: RoundLogEventOf<'round.opened'>,
  fail: Fail,
): void {
  if (event.dp !== null && !(event.dp.noiseMultiplier > 0))
    fail('PRIVACY', `round ${event.roundId} promises differential privacy with no noise (z = 0)`);
  if (privacy.promise !== undefined && canonicalJson(privacy.promise) !== canonicalJson(event.dp))
    fail(
      'PRIVACY',
      `round ${event.roundId} promises ${describe(event.dp)}, the task's earlier rounds ${describe(privacy.promise)}, with no policy change between`,
    );
  privacy.promise = event.dp;
}

function describe(dp: RoundLogEventOf<'round.opened'>['dp'] | undefined): string {
  if (!dp) return 'no differential privacy';
  return `z ${dp.noiseMultiplier}, δ ${dp.delta}, budget ε ${dp.epsilonBudget}`;
}

/**
 * An aggregation (not a repeat of its round's earlier one) against its round's promise and the
 * task's ε so far.
 */
export function checkAggregationPrivacy(
  privacy: TaskPrivacy,
  opened: RoundLogEventOf<'round.opened'>,
  event: RoundLogEventOf<'aggregation'>,
  fail: Fail,
): void {
  const id = event.roundId;
  const dp = opened.dp;
  if (dp === null) {
    if (event.noiseMultiplier !== 0 || event.epsilon !== null || event.delta !== null)
      fail('PRIVACY', `aggregation of ${id} reports noise or ε in a round without differential privacy`);
    return;
  }
  if (!close(event.noiseMultiplier, dp.noiseMultiplier))
    fail(
      'PRIVACY',
      `aggregation of ${id} added noise z = ${event.noiseMultiplier}, the round promised z = ${dp.noiseMultiplier}`,
    );
  if (event.delta === null || !close(event.delta, dp.delta))
    fail(
      'PRIVACY',
      `aggregation of ${id} reports ε at δ = ${event.delta}, the round promised δ = ${dp.delta}`,
    );
  if (!close(event.clipNorm, opened.clipNorm))
    fail(
      'PRIVACY',
      `aggregation of ${id} scaled its noise to clip norm ${event.clipNorm}, the round clipped at ${opened.clipNorm}`,
    );
  const epsilon = event.epsilon;
  if (epsilon === null) {
    fail('DP_MISSING', `round ${id} has a privacy budget but its aggregation reports no ε`);
    return;
  }
  const before = privacy.epsilon;
  if (before !== null && epsilon < before)
    fail('EPSILON', `aggregation of ${id} reports ε = ${epsilon}, below the ${before} already spent`);
  else if (event.noiseMultiplier > 0 && before !== null && !(epsilon > before))
    fail(
      'EPSILON',
      `aggregation of ${id} released a noised aggregate without charging it: ε stays ${before}`,
    );
  else if (event.noiseMultiplier > 0 && !(epsilon > 0))
    fail('EPSILON', `aggregation of ${id} released a noised aggregate at ε = 0`);
  // Nothing past the budget is computed, promoted or not: a noised aggregate is a release.
  if (epsilon > dp.epsilonBudget * (1 + EPSILON_TOLERANCE))
    fail('BUDGET', `aggregation of ${id} spends ε = ${epsilon}, past the budget ${dp.epsilonBudget}`);
  privacy.epsilon = Math.max(before ?? 0, epsilon);
}

/**
 * What the log says about single updates, against the round's promise. A DP round publishes
 * nothing computed from one update's content (docs/privacy.md): its `update.accepted` and
 * `update.refused` records carry no norm, clipped flag, size or example count, its participants
 * weigh 1 each (a weight would reveal an example count), and its audit names no device. A round
 * without DP must carry each accepted update's norm, or its clip bound cannot be checked.
 */
export function checkPerUpdatePublication(
  opened: RoundLogEventOf<'round.opened'>,
  event: RoundLogEventOf<'update.accepted' | 'update.refused' | 'aggregation' | 'audit'>,
  fail: Fail,
): void {
  const id = event.roundId;
  if (opened.dp === null) {
    if (event.type === 'update.accepted' && event.norm === null)
      fail(
        'CLIP',
        `update from ${event.device} in round ${id} carries no norm to check against its clip bound`,
      );
    return;
  }
  switch (event.type) {
    case 'update.accepted': {
      const published = (['norm', 'clipped', 'bytes', 'numExamples'] as const).filter(
        (k) => event[k] !== null,
      );
      if (published.length > 0)
        fail(
          'PRIVACY',
          `round ${id} is differentially private but publishes the ${published.join(', ')} of ${event.device}'s update`,
        );
      return;
    }
    case 'update.refused': {
      const published = (['norm', 'clipped', 'bytes'] as const).filter((k) => event[k] !== null);
      if (published.length > 0)
        fail(
          'PRIVACY',
          `round ${id} is differentially private but publishes the ${published.join(', ')} of ${event.device}'s refused update`,
        );
      return;
    }
    case 'aggregation':
      for (const p of event.participants)
        if (p.weight !== 1)
          fail(
            'PRIVACY',
            `aggregation of ${id} is differentially private but weighs ${p.device} ${p.weight}, not 1: a weight reveals a per-update number`,
          );
      return;
    case 'audit':
      for (const f of event.findings)
        if (f.device !== null)
          fail('PRIVACY', `audit of ${id} is differentially private but names ${f.device} (${f.code})`);
      return;
  }
}
