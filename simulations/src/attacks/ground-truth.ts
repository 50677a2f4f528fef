// What the defences did to the attackers' updates, read from the signed round log against the
// simulation's ground truth (which pseudonyms were Byzantine): per aggregated round, how many
// attacker and honest updates the drift audit flagged and the robust strategy excluded.
import { roundNumberOf, type RoundLogEvent } from '@flotilla/protocol';
import type { DetectionCounts, RoundDetection } from '../report/attack-metrics.js';

/** Counts of one round (or of a run) before precision and recall are derived. */
type Tally = Omit<DetectionCounts, 'precision' | 'recall'>;

const emptyTally = (): Tally => ({
  attackerUpdates: 0,
  honestUpdates: 0,
  attackersFlagged: 0,
  honestFlagged: 0,
  attackersExcluded: 0,
  honestExcluded: 0,
  attackersCaught: 0,
  honestCaught: 0,
  attackersRefused: 0,
  honestRefused: 0,
});

/** Precision and recall of "caught" as a detector of attacker updates. */
function withRates(tally: Tally): DetectionCounts {
  const caught = tally.attackersCaught + tally.honestCaught;
  return {
    ...tally,
    precision: caught > 0 ? tally.attackersCaught / caught : null,
    recall: tally.attackerUpdates > 0 ? tally.attackersCaught / tally.attackerUpdates : null,
  };
}

function addTally(into: Tally, from: Tally): void {
  for (const key of Object.keys(into) as Array<keyof Tally>) into[key] += from[key];
}

/**
 * Per aggregated round (in log order) and in total. A round counts once its audit is logged (a
 * retried job's repeated audit replaces the first); refusals are counted per (device, round),
 * however often the device retried.
 */
export function detectionByRound(options: {
  events: readonly RoundLogEvent[];
  /** Pseudonyms of the Byzantine devices. */
  byzantine: ReadonlySet<string>;
}): { rounds: RoundDetection[]; total: DetectionCounts } {
  const { byzantine } = options;
  const aggregations = new Map<string, RoundLogEvent & { type: 'aggregation' }>();
  const refused = new Map<string, Set<string>>();
  const rounds = new Map<string, { round: number; attackers: string[]; tally: Tally }>();
  for (const event of options.events) {
    if (event.type === 'aggregation') aggregations.set(event.roundId, event);
    if (event.type === 'update.refused') {
      const devices = refused.get(event.roundId) ?? new Set<string>();
      refused.set(event.roundId, devices.add(event.device));
    }
    if (event.type !== 'audit') continue;
    const flagged = new Set(
      event.findings.filter((f) => f.severity !== 'info' && f.device !== null).map((f) => f.device),
    );
    const tally = emptyTally();
    const attackers: string[] = [];
    for (const participant of aggregations.get(event.roundId)?.participants ?? []) {
      const attacker = byzantine.has(participant.device);
      if (attacker) attackers.push(participant.device);
      const isFlagged = flagged.has(participant.device);
      const isExcluded = participant.weight === 0;
      if (attacker) {
        tally.attackerUpdates++;
        if (isFlagged) tally.attackersFlagged++;
        if (isExcluded) tally.attackersExcluded++;
        if (isFlagged || isExcluded) tally.attackersCaught++;
      } else {
        tally.honestUpdates++;
        if (isFlagged) tally.honestFlagged++;
        if (isExcluded) tally.honestExcluded++;
        if (isFlagged || isExcluded) tally.honestCaught++;
      }
    }
    for (const device of refused.get(event.roundId) ?? []) {
      if (byzantine.has(device)) tally.attackersRefused++;
      else tally.honestRefused++;
    }
    rounds.set(event.roundId, { round: roundNumberOf(event.roundId), attackers, tally });
  }
  const total = emptyTally();
  for (const { tally } of rounds.values()) addTally(total, tally);
  return {
    rounds: [...rounds.values()].map(({ round, attackers, tally }) => ({
      round,
      attackers,
      ...withRates(tally),
    })),
    total: withRates(total),
  };
}
