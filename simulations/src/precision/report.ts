// The suite's figures against the targets, and their Markdown. Pure: numbers in, text out.
import type { CaseKind } from './suite.js';
import type { PrecisionCounts, RunPrecision } from './analyze.js';

export interface CaseRun {
  name: string;
  kind: CaseKind;
  seed: number;
  precision: RunPrecision;
  /** The run's round log verified (tree heads, signatures, rules, recomputed aggregates). */
  logVerified: boolean;
}

/** The targets the suite checks (issue 16). */
export const TARGETS = {
  /** Largest fraction of honest updates flagged in the honest non-IID runs. */
  maxHonestFlagged: 0.05,
  /** Smallest fraction of attackers' updates flagged. */
  minAttackerFlagged: 0.95,
  /** Smallest final accuracy of an attacked run (robust strategy) relative to the attack-free run of its seed. */
  minAccuracyRatio: 0.9,
} as const;

/** A case over its seeds: the counts added up, the rest per seed. */
export interface CaseSummary extends PrecisionCounts {
  name: string;
  kind: CaseKind;
  seeds: number[];
  finalAccuracy: number[];
  /** Final accuracy over the attack-free run's, per seed (attack cases only). */
  accuracyRatio: number[];
  stopped: string[];
  /** Runs whose round log verified, of `seeds.length`. */
  logsVerified: number;
}

export interface TargetCheck {
  target: string;
  measured: string;
  pass: boolean;
}

const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a');
const ratio = (a: number, b: number): number => (b === 0 ? Number.NaN : a / b);

/**
 * Attackers' updates stopped, of those sent: flagged by the audit, or refused by the coordinator
 * before any aggregation (a refusal stops an update more surely than a flag).
 */
function attackersStopped(c: CaseSummary): { stopped: number; sent: number; text: string } {
  const stopped = c.attackerFlagged + c.attackerRefused;
  const sent = c.attackerUpdates + c.attackerRefused;
  const refused = c.attackerRefused > 0 ? `, ${c.attackerRefused} refused` : '';
  return { stopped, sent, text: `${stopped} / ${sent} (${pct(ratio(stopped, sent))}${refused})` };
}

export function summarizeCases(runs: readonly CaseRun[]): CaseSummary[] {
  const names = [...new Set(runs.map((r) => r.name))];
  const reference = new Map(
    runs.filter((r) => r.kind === 'attack-free').map((r) => [r.seed, r.precision.finalAccuracy]),
  );
  return names.map((name) => {
    const of = runs.filter((r) => r.name === name);
    const sum = (key: keyof PrecisionCounts) => of.reduce((s, r) => s + r.precision[key], 0);
    return {
      name,
      kind: of[0]?.kind ?? 'honest',
      seeds: of.map((r) => r.seed),
      honestUpdates: sum('honestUpdates'),
      honestFlagged: sum('honestFlagged'),
      attackerUpdates: sum('attackerUpdates'),
      attackerFlagged: sum('attackerFlagged'),
      attackerRefused: sum('attackerRefused'),
      audited: sum('audited'),
      rejected: sum('rejected'),
      rejectedImproved: sum('rejectedImproved'),
      finalAccuracy: of.map((r) => r.precision.finalAccuracy),
      accuracyRatio:
        of[0]?.kind === 'attack'
          ? of.map((r) => ratio(r.precision.finalAccuracy, reference.get(r.seed) ?? Number.NaN))
          : [],
      stopped: of.flatMap((r) =>
        r.precision.stopped === null ? [] : [`seed ${r.seed}: ${r.precision.stopped}`],
      ),
      logsVerified: of.filter((r) => r.logVerified).length,
    };
  });
}

/** Each target, over the whole suite. */
export function checkTargets(cases: readonly CaseSummary[]): TargetCheck[] {
  const honest = cases.filter((c) => c.kind === 'honest');
  const attacks = cases.filter((c) => c.kind === 'attack');
  const checks: TargetCheck[] = [];
  for (const c of honest) {
    const rate = ratio(c.honestFlagged, c.honestUpdates);
    checks.push({
      target: `${c.name}: honest updates flagged <= ${pct(TARGETS.maxHonestFlagged)}`,
      measured: `${c.honestFlagged} of ${c.honestUpdates} (${pct(rate)})`,
      pass: c.honestUpdates > 0 && rate <= TARGETS.maxHonestFlagged,
    });
    checks.push({
      target: `${c.name}: no rejected round whose candidate is better beyond noise`,
      measured: `${c.rejectedImproved} of ${c.rejected} rejected rounds`,
      pass: c.rejectedImproved === 0,
    });
  }
  for (const c of attacks) {
    const { stopped, sent, text } = attackersStopped(c);
    checks.push({
      target: `${c.name}: attackers' updates flagged (or refused) >= ${pct(TARGETS.minAttackerFlagged)}`,
      measured: text,
      pass: sent > 0 && ratio(stopped, sent) >= TARGETS.minAttackerFlagged,
    });
    const worst = Math.min(...c.accuracyRatio);
    checks.push({
      target: `${c.name}: final accuracy >= ${pct(TARGETS.minAccuracyRatio)} of the attack-free run`,
      measured: c.accuracyRatio.map(pct).join(', '),
      pass: c.accuracyRatio.length > 0 && worst >= TARGETS.minAccuracyRatio,
    });
  }
  const runs = cases.reduce((n, c) => n + c.seeds.length, 0);
  const verified = cases.reduce((n, c) => n + c.logsVerified, 0);
  checks.push({
    target: 'every run: its round log verifies, aggregates recomputed',
    measured: `${verified} of ${runs}`,
    pass: verified === runs,
  });
  return checks;
}

/** The suite's Markdown: per-case table, then the targets. */
export function precisionMarkdown(cases: readonly CaseSummary[], checks: readonly TargetCheck[]): string {
  const lines = [
    "| case | seeds | honest updates flagged | attackers' updates flagged (or refused) | rounds rejected / audited | rejected though better beyond noise | final test accuracy | vs attack-free |",
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const c of cases)
    lines.push(
      `| \`${c.name}\` | ${c.seeds.join(', ')} | ${c.honestFlagged} / ${c.honestUpdates} (${pct(ratio(c.honestFlagged, c.honestUpdates))}) | ${
        c.attackerUpdates + c.attackerRefused === 0 ? '–' : attackersStopped(c).text
      } | ${c.rejected} / ${c.audited} | ${c.rejectedImproved} | ${c.finalAccuracy.map(pct).join(', ')} | ${
        c.accuracyRatio.length === 0 ? '–' : c.accuracyRatio.map(pct).join(', ')
      } |`,
    );
  const stops = cases.flatMap((c) => c.stopped.map((s) => `- \`${c.name}\` ${s}`));
  return [
    ...lines,
    '',
    '| target | measured | met? |',
    '| --- | --- | --- |',
    ...checks.map((t) => `| ${t.target} | ${t.measured} | ${t.pass ? 'yes' : '**no**'} |`),
    ...(stops.length > 0 ? ['', 'Tasks the worker stopped:', ...stops] : []),
    '',
  ].join('\n');
}
