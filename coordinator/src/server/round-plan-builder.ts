import { randomBytes, randomInt } from 'node:crypto';
import type { RoundLogEventOf, RoundPlan, TaskDefinition } from '@flotilla/protocol';
import type { AggregateJobData, AggregateUpdateRef } from '../shared/queues.js';
import { AcceptedUpdateSchema } from './accepted-update.js';
import type { RoundRecord } from './round-store.js';

/** retryAfterMs jittered uniformly in [0.5, 1.5) × base (pace steering). */
export function jitter(baseMs: number): number {
  return Math.round(baseMs * (0.5 + Math.random()));
}

/**
 * A uniformly random permutation (Fisher–Yates) drawn from the CSPRNG: who is selected must not be
 * predictable from other outputs of the process (Math.random's state leaks through e.g. jitter).
 */
export function shuffle<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    const a = out[i];
    const b = out[j];
    if (a !== undefined && b !== undefined) {
      out[i] = b;
      out[j] = a;
    }
  }
  return out;
}

/**
 * Round `roundNumber` of `task` as it opens at `now` (epoch ms): SELECTING, with a fresh nonce, the
 * selection deadline, and the selection sizes: targetSelect = ceil(goalCount * overSelection),
 * minSelect = max(minReports, ceil(goalCount * minGoalFraction)).
 */
export function newRoundRecord(task: TaskDefinition, roundNumber: number, now: number): RoundRecord {
  const { rounds } = task;
  return {
    roundId: `${task.taskId}:${roundNumber}`,
    taskId: task.taskId,
    roundNumber,
    state: 'SELECTING',
    nonce: randomBytes(32).toString('hex'),
    openedAt: now,
    selectionDeadline: now + rounds.selectionTimeoutMs,
    goalCount: rounds.goalCount,
    minReports: rounds.minReports,
    acceptWindowMs: rounds.acceptWindowMs,
    targetSelect: Math.ceil(rounds.goalCount * rounds.overSelection),
    minSelect: Math.max(rounds.minReports, Math.ceil(rounds.goalCount * rounds.minGoalFraction)),
    acceptedCount: 0,
    skippedCount: 0,
    finalRefusedCount: 0,
    selectedCount: 0,
  };
}

/** The round plan sent to selected devices; `clipOverride` is the worker's adaptive clip norm, if any. */
export function buildRoundPlan(input: {
  round: RoundRecord;
  task: TaskDefinition;
  version: number;
  adapterDigest: string | null;
  clipOverride: string | null;
}): RoundPlan {
  const { round, task, version, adapterDigest, clipOverride } = input;
  const clipNorm =
    clipOverride !== null && Number(clipOverride) > 0 ? Number(clipOverride) : task.policy.clipNorm;
  return {
    roundId: round.roundId,
    taskId: task.taskId,
    roundNumber: round.roundNumber,
    nonce: round.nonce,
    baseModelDigest: task.baseModel.digest,
    adapter: { spec: task.adapter, version, digest: adapterDigest },
    training: task.rounds.training,
    budget: {
      maxSteps: task.rounds.maxSteps,
      maxSeconds: task.rounds.maxSeconds,
      maxUploadBytes: task.policy.maxBlobBytes,
    },
    clipNorm,
    quantization: task.rounds.quantization,
    validationTolerance: task.rounds.validationTolerance,
    deadline: Date.now() + task.rounds.reportingDeadlineMs,
    // The same promise round.opened logs: the device checks its record's form against it.
    ...(task.policy.dp ? { dp: true } : {}),
  };
}

/** The aggregation job of a closed round: references to its accepted updates, in acceptance order. */
export function buildAggregateJob(round: RoundRecord, acceptedJson: string[]): AggregateJobData {
  const records = acceptedJson.map((raw) => AcceptedUpdateSchema.parse(JSON.parse(raw)));
  records.sort((a, b) => a.acceptedAt - b.acceptedAt || a.updateId.localeCompare(b.updateId));
  const updates: AggregateUpdateRef[] = records.map((r) => ({
    updateId: r.updateId,
    devicePseudonym: r.devicePseudonym,
    blobDigest: r.blobDigest,
    ...(r.commitment !== undefined ? { commitment: r.commitment } : {}),
    numExamples: r.numExamples,
    norm: r.norm,
    clipped: r.clipped,
  }));
  const plan = round.plan;
  if (!plan) throw new Error(`round ${round.roundId} has no plan`);
  return {
    taskId: round.taskId,
    roundId: round.roundId,
    roundNumber: round.roundNumber,
    parentVersion: plan.adapter.version,
    clipNorm: plan.clipNorm,
    updates,
  };
}

/** The `round.opened` round-log event: the parameters every later check of the round is measured against. */
export function roundOpenedEvent(
  round: RoundRecord,
  plan: RoundPlan,
  task: TaskDefinition,
): RoundLogEventOf<'round.opened'> {
  const dp = task.policy.dp;
  return {
    type: 'round.opened',
    taskId: round.taskId,
    roundId: round.roundId,
    goalCount: round.goalCount,
    minReports: round.minReports,
    clipNorm: plan.clipNorm,
    parentVersion: plan.adapter.version,
    deadline: plan.deadline,
    dp: dp ? { epsilonBudget: dp.epsilonBudget, delta: dp.delta, noiseMultiplier: dp.noiseMultiplier } : null,
  };
}
