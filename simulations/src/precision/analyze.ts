// What one run of the suite shows, read from its signed round log and the simulation's ground
// truth (which pseudonyms were Byzantine): every aggregated update, flagged or not, and every
// decision with the holdout's verdict.
import type { RoundLogEvent } from '@flotilla/protocol';
import { detectionByRound } from '../attacks/ground-truth.js';
import type { SimulationResult } from '../runner/run-simulation.js';

export { readRoundLogEvents } from '../runner/round-log-events.js';

/** What a run's audit did, counted (a case adds them up over its seeds). */
export interface PrecisionCounts {
  /** Aggregated updates from honest devices, and how many of them the audit flagged. */
  honestUpdates: number;
  honestFlagged: number;
  /** Aggregated updates from Byzantine devices, and how many of them the audit flagged. */
  attackerUpdates: number;
  attackerFlagged: number;
  /**
   * Attackers' updates the coordinator refused (e.g. a norm above the clip bound: honest clients
   * always clip), in audited rounds; they are not among `attackerUpdates`.
   */
  attackerRefused: number;
  /** Rounds aggregated, and rejected. */
  audited: number;
  rejected: number;
  /** Rejected rounds whose candidate the holdout showed better beyond noise. */
  rejectedImproved: number;
}

export interface RunPrecision extends PrecisionCounts {
  /** Test accuracy after the last round. */
  finalAccuracy: number;
  /** Why the task stopped early, or null. */
  stopped: string | null;
}

/** Counts flags and decisions of one run against the ground truth. */
export function analyzeRun(result: SimulationResult, events: readonly RoundLogEvent[]): RunPrecision {
  const byzantine = new Set(result.devices.filter((d) => d.byzantine).map((d) => d.pseudonym));
  const { total } = detectionByRound({ events, byzantine });
  const audits = events.filter((e): e is RoundLogEvent & { type: 'audit' } => e.type === 'audit');
  const rejections = audits.filter((e) => e.decision === 'fail');
  return {
    honestUpdates: total.honestUpdates,
    honestFlagged: total.honestFlagged,
    attackerUpdates: total.attackerUpdates,
    attackerFlagged: total.attackersFlagged,
    attackerRefused: total.attackersRefused,
    audited: audits.length,
    rejected: rejections.length,
    rejectedImproved: rejections.filter((e) => e.metrics.holdoutBetterBeyondNoise === 1).length,
    finalAccuracy: result.metrics.at(-1)?.accuracy ?? Number.NaN,
    stopped: result.stopped,
  };
}
