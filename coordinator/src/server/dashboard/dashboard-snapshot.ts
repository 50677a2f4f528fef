import type { RoundLogSummary, SignedTask } from '@flotilla/protocol';
import type { ChainStatus } from '../metrics/round-log-follower.js';
import type { RoundState } from '../round-machine.js';

// The JSON the dashboard page renders (GET /dashboard/api/state and every SSE `state` event).
// It holds no device ids for auditors: devices appear as counts or round-log pseudonyms.

export type DashboardRole = 'operator' | 'auditor';

export interface DashboardRound {
  roundId: string;
  roundNumber: number;
  state: RoundState;
  openedAt: number;
  /** Selection gives up at this epoch ms (SELECTING). */
  selectionDeadline: number;
  /** Reporting deadline (epoch ms), once REPORTING. */
  deadline: number | null;
  /** Earlier close once goalCount is reached. */
  closeAt: number | null;
  closedAt: number | null;
  decidedAt: number | null;
  goalCount: number;
  minReports: number;
  /** Eligible devices that checked in for this round. */
  checkedIn: number;
  selected: number;
  accepted: number;
  skipped: number;
  refused: number;
  /**
   * Accepted updates acknowledged again after a lost ack (answered DUPLICATE_UPDATE): part of
   * `accepted`, never of `refused`.
   */
  resubmitted: number;
  /** Refusals by error code, as counted by the coordinator (repeats included). */
  refusedByReason: Record<string, number>;
  /** L2 norms of the accepted updates, as recomputed by the coordinator; empty in a DP round. */
  norms: number[];
  /**
   * A DP round: per-update norms are not shown (auditors read this page, and ε does not cover
   * un-noised per-update values; docs/privacy.md).
   */
  normsWithheld: boolean;
  clipNorm: number | null;
  /** Accepted updates whose device reported that clipping changed its delta (0 in a DP round). */
  clipped: number;
  /**
   * Every accepted update's norm is the clip bound (relative tolerance 1e-4): the devices' deltas
   * were all longer than the bound and scaled down to it, so the bound, not the data, set their size.
   */
  allAtClipBound: boolean;
  /** Abandon reason, or the worker's reasons for a decision. */
  reason: string | null;
}

export interface DashboardAdapterVersion {
  version: number;
  parentVersion: number;
  roundId: string | null;
  createdAt: number;
  decision: 'promote' | 'reject' | 'rollback';
  reasons: string[];
  rollbackOf: number | null;
  participants: number;
  strategy: string;
  epsilon: number | null;
  adapterDigest: string;
  /** The worker's server-holdout accuracy of this version, in [0, 1] (null without a holdout). */
  holdoutAccuracy: number | null;
  /** Its mean holdout loss (null without a holdout). */
  holdoutLoss: number | null;
}

/**
 * Where a task stands: `running`, `paused` / `stopped` / `archived` by an operator (or `stopped`
 * by the worker, e.g. a spent privacy budget), or `finished`: its `maxRounds` rounds have ended.
 */
export type DashboardTaskStatus = 'running' | 'paused' | 'stopped' | 'archived' | 'finished';

export interface DashboardDecision {
  kind: 'promotion' | 'rejection' | 'rollback';
  ts: number;
  roundId: string | null;
  version: number | null;
  reasons: string[];
}

export interface DashboardTask {
  taskId: string;
  description: string;
  createdAt: number;
  adapterMode: string;
  strategy: string;
  clipNorm: number;
  goalCount: number;
  minReports: number;
  maxRounds: number;
  dp: { epsilonBudget: number; delta: number; noiseMultiplier: number } | null;
  status: DashboardTaskStatus;
  /** Why it is not running (the operator's or the worker's reason); null while running. */
  statusReason: string | null;
  /** The live adapter version's server-holdout quality; null when the worker has no holdout. */
  holdout: { version: number; accuracy: number | null; loss: number | null } | null;
  current: DashboardRound | null;
  /** Most recent first, the current round included. */
  history: DashboardRound[];
  latestVersion: number;
  adapters: DashboardAdapterVersion[];
  decisions: DashboardDecision[];
  /** ε after each aggregation, oldest first. */
  epsilon: Array<{ ts: number; roundId: string; epsilon: number }>;
}

export interface DashboardSnapshot {
  /** Server clock (epoch ms) when built: the page corrects countdowns by its offset. */
  serverTime: number;
  role: DashboardRole;
  fleet: {
    enrolled: number;
    revoked: number;
    /** Devices with an authenticated socket on this coordinator. */
    connected: number;
    /** Distinct devices checked in (eligible) to the current round of any task. */
    eligible: number;
  };
  tasks: DashboardTask[];
  chain: ChainStatus;
  /** Operator view only: the enrolled devices (never sent to auditors). */
  devices?: Array<{ deviceId: string; status: string; enrolledAt: number; online: boolean }>;
}

/** Round-log facts about one task, taken from the summary. */
export function taskLogFacts(summary: RoundLogSummary, taskId: string) {
  const decisions: DashboardDecision[] = [
    ...summary.promotions
      .filter((p) => p.taskId === taskId)
      .map((p) => ({
        kind: 'promotion' as const,
        ts: p.ts,
        roundId: p.roundId,
        version: p.version,
        reasons: [],
      })),
    ...summary.rejections
      .filter((r) => r.taskId === taskId)
      .map((r) => ({
        kind: 'rejection' as const,
        ts: r.ts,
        roundId: r.roundId,
        version: null,
        reasons: r.reasons,
      })),
    ...summary.rollbacks
      .filter((r) => r.taskId === taskId)
      .map((r) => ({
        kind: 'rollback' as const,
        ts: r.ts,
        roundId: null,
        version: r.version,
        reasons: [`rollback to the content of v${r.rollbackOf}: ${r.reason}`],
      })),
  ].sort((a, b) => b.ts - a.ts);
  const epsilon = summary.epsilonOverTime
    .filter((e) => e.taskId === taskId)
    .map((e) => ({ ts: e.ts, roundId: e.roundId, epsilon: e.epsilon }));
  const refusedByRound = new Map<string, Record<string, number>>();
  for (const round of summary.rounds)
    if (round.taskId === taskId) refusedByRound.set(round.roundId, round.refusedByReason);
  return { decisions, epsilon, refusedByRound };
}

export function taskHeader(signed: SignedTask) {
  const { task } = signed;
  return {
    taskId: task.taskId,
    description: task.description,
    createdAt: task.createdAt,
    adapterMode: task.adapter.mode,
    strategy: task.policy.strategy.name,
    clipNorm: task.policy.clipNorm,
    goalCount: task.rounds.goalCount,
    minReports: task.rounds.minReports,
    maxRounds: task.rounds.maxRounds,
    dp: task.policy.dp
      ? {
          epsilonBudget: task.policy.dp.epsilonBudget,
          delta: task.policy.dp.delta,
          noiseMultiplier: task.policy.dp.noiseMultiplier,
        }
      : null,
  };
}
