// What one run of the suite shows, read from its signed round log and the simulation's ground
// truth (which pseudonyms were Byzantine): every aggregated update, flagged or not, and every
// decision with the holdout's verdict.
import { readFileSync } from 'node:fs';
import { RoundLogEventSchema, type RoundLogEvent } from '@flotilla/protocol';
import type { SimulationResult } from '../runner/run-simulation.js';

export interface RunPrecision {
  /** Aggregated updates from honest devices, and how many of them the audit flagged. */
  honestUpdates: number;
  honestFlagged: number;
  /** Aggregated updates from Byzantine devices, and how many of them the audit flagged. */
  attackerUpdates: number;
  attackerFlagged: number;
  /** Rounds aggregated, and rejected. */
  audited: number;
  rejected: number;
  /** Rejected rounds whose candidate the holdout showed better beyond noise. */
  rejectedImproved: number;
  /** Test accuracy after the last round. */
  finalAccuracy: number;
  /** Why the task stopped early, or null. */
  stopped: string | null;
}

/** The round log's events, in order. */
export function readRoundLogEvents(path: string): RoundLogEvent[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => RoundLogEventSchema.parse((JSON.parse(line) as { event: unknown }).event));
}

/** Counts flags and decisions of one run against the ground truth. */
export function analyzeRun(result: SimulationResult, events: readonly RoundLogEvent[]): RunPrecision {
  const byzantine = new Set(result.devices.filter((d) => d.byzantine).map((d) => d.pseudonym));
  const out: RunPrecision = {
    honestUpdates: 0,
    honestFlagged: 0,
    attackerUpdates: 0,
    attackerFlagged: 0,
    audited: 0,
    rejected: 0,
    rejectedImproved: 0,
    finalAccuracy: result.metrics.at(-1)?.accuracy ?? Number.NaN,
    stopped: result.stopped,
  };
  const participants = new Map<string, string[]>();
  for (const event of events) {
    if (event.type === 'aggregation')
      participants.set(
        event.roundId,
        event.participants.map((p) => p.device),
      );
    if (event.type !== 'audit') continue;
    const devices = participants.get(event.roundId) ?? [];
    const flagged = new Set(
      event.findings.filter((f) => f.severity === 'warn' && f.device).map((f) => f.device),
    );
    out.audited++;
    for (const device of devices) {
      const attacker = byzantine.has(device);
      if (attacker) out.attackerUpdates++;
      else out.honestUpdates++;
      if (flagged.has(device)) {
        if (attacker) out.attackerFlagged++;
        else out.honestFlagged++;
      }
    }
    if (event.decision === 'fail') {
      out.rejected++;
      if (event.metrics.holdoutBetterBeyondNoise === 1) out.rejectedImproved++;
    }
  }
  return out;
}
