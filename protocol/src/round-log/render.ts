import type { RoundLogSummary, RoundSummary } from './summary.js';

function iso(ts: number | null): string {
  return ts === null ? '-' : new Date(ts).toISOString();
}

function renderRound(round: RoundSummary): string[] {
  if (round.openedAt === null)
    return [
      `round ${round.roundId} (abandoned before any plan)`,
      `  quorum ${round.minReports}, nothing selected or accepted`,
      `  abandoned: ${round.abandonReason ?? '-'}`,
    ];
  const lines = [
    `round ${round.roundId} (${round.status}) opened ${iso(round.openedAt)}`,
    `  goal ${round.goalCount}, quorum ${round.minReports}, clip norm ${round.clipNorm}, selected ${round.selected.length}`,
    round.clipped === null || round.acceptedExamples === null || round.acceptedBytes === null
      ? `  accepted ${round.accepted} (per-update statistics withheld: differential privacy)`
      : `  accepted ${round.accepted} (${round.clipped} clipped, ${round.acceptedExamples} examples, ${round.acceptedBytes} bytes)`,
  ];
  const refused = Object.entries(round.refusedByReason);
  lines.push(
    `  refused ${refused.length === 0 ? 'none' : refused.map(([reason, n]) => `${reason} ×${n}`).join(', ')}`,
  );
  if (round.abandonReason !== null) lines.push(`  abandoned: ${round.abandonReason}`);
  const aggregation = round.aggregation;
  if (aggregation) {
    const privacy =
      aggregation.epsilon === null ? 'no DP' : `ε=${aggregation.epsilon} δ=${aggregation.delta ?? '-'}`;
    lines.push(
      `  aggregation ${aggregation.strategy} (${aggregation.loraRule}), ${aggregation.participants} participants, noise ${aggregation.noiseMultiplier}, ${privacy}${aggregation.deltasRetained ? ', deltas retained' : ''}`,
    );
  }
  if (round.audit) {
    lines.push(`  audit ${round.audit.decision}`);
    for (const finding of round.audit.findings)
      lines.push(`    [${finding.severity}] ${finding.code}: ${finding.message}`);
  }
  if (round.outcome?.kind === 'promotion') lines.push(`  promoted as version ${round.outcome.version}`);
  if (round.outcome?.kind === 'rejection') lines.push(`  rejected: ${round.outcome.reasons.join('; ')}`);
  return lines;
}

/** Plain-text rendering of a summary, for `flotilla audit show`. */
export function renderRoundLogSummary(summary: RoundLogSummary): string {
  const lines = [
    `${summary.records} records from ${iso(summary.firstTs)} to ${iso(summary.lastTs)}` +
      (summary.invalidRecords > 0 ? ` (${summary.invalidRecords} invalid: run audit verify)` : ''),
    `${summary.rounds.length} rounds, ${summary.participants} distinct participating devices`,
    '',
  ];
  for (const round of summary.rounds) lines.push(...renderRound(round), '');
  if (summary.epsilonOverTime.length > 0) {
    lines.push('privacy spent (ε over time):');
    for (const point of summary.epsilonOverTime)
      lines.push(`  ${iso(point.ts)} ${point.roundId} ε=${point.epsilon} δ=${point.delta ?? '-'}`);
    lines.push('');
  }
  for (const p of summary.promotions)
    lines.push(`promotion: ${p.taskId} v${p.version} from ${p.roundId} (manifest ${p.manifestDigest})`);
  for (const r of summary.rejections) lines.push(`rejection: ${r.roundId}: ${r.reasons.join('; ')}`);
  for (const r of summary.rollbacks)
    lines.push(`rollback: ${r.taskId} v${r.version} restores v${r.rollbackOf}: ${r.reason}`);
  for (const p of summary.policyChanges)
    lines.push(`policy change: ${p.taskId ?? 'coordinator'} -> ${p.policyDigest}: ${p.reason}`);
  for (const c of summary.taskControls)
    lines.push(`task ${c.action}: ${c.taskId} at ${iso(c.ts)}: ${c.reason}`);
  for (const k of summary.keyRotations)
    lines.push(`key rotation at seq ${k.seq}: ${k.previousKeyId} -> ${k.newKeyId}: ${k.reason}`);
  return lines.join('\n').trimEnd() + '\n';
}
