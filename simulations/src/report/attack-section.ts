// The report's "Attack ground truth" tables: who attacked, and per round how many of their
// updates the drift audit flagged or the strategy excluded (precision and recall of "caught").
import type { DetectionCounts } from './attack-metrics.js';
import type { RunMetrics } from './metrics.js';

const rate = (value: number | null): string => (value === null ? '–' : `${(100 * value).toFixed(0)}%`);

const ATTACK_HEADER = [
  'round',
  'attacker updates',
  'honest updates',
  'attackers flagged',
  'attackers excluded',
  'honest caught',
  'attackers refused',
  'precision',
  'recall',
];

function detectionCells(label: string, counts: DetectionCounts): string[] {
  return [
    label,
    String(counts.attackerUpdates),
    String(counts.honestUpdates),
    String(counts.attackersFlagged),
    String(counts.attackersExcluded),
    String(counts.honestCaught),
    String(counts.attackersRefused),
    rate(counts.precision),
    rate(counts.recall),
  ];
}

/** "round: accuracy" for every round a backdoor accuracy was measured, or null if none was. */
function backdoorText(run: RunMetrics): string | null {
  const measured = run.metrics.filter((m) => m.backdoorAccuracy !== undefined);
  if (measured.length === 0) return null;
  return (
    'Backdoor accuracy (triggered test inputs of other classes put in the target class) by round: ' +
    measured.map((m) => `${m.round}: ${rate(m.backdoorAccuracy ?? null)}`).join(', ') +
    '.'
  );
}

/**
 * A run's attack section as a heading, sentences and table rows (header first; none without
 * attackers), or null for a run with neither attackers nor a backdoor measurement.
 */
export function attackSection(
  run: RunMetrics,
): { heading: string; text: string[]; header: string[]; rows: string[][] } | null {
  const { attack } = run;
  const backdoor = backdoorText(run);
  if (attack === undefined && backdoor === null) return null;
  const text: string[] = [];
  if (attack !== undefined) {
    const names = attack.attackers.map((a) => a.deviceId).join(', ') || 'none';
    text.push(
      `Attack ${attack.attack}; ${attack.attackers.length} attacker(s): ${names}. An update is caught when ` +
        'the drift audit flags it or the strategy gives it weight 0; precision = attackers caught / all caught, ' +
        'recall = attackers caught / attacker updates aggregated.',
    );
  }
  if (backdoor !== null) text.push(backdoor);
  return {
    heading: `Attack ground truth: ${run.label}`,
    text,
    header: ATTACK_HEADER,
    rows:
      attack === undefined
        ? []
        : [
            ...attack.rounds.map((r) => detectionCells(String(r.round), r)),
            detectionCells('total', attack.total),
          ],
  };
}
