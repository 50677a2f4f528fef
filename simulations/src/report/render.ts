import { attackSection } from './attack-section.js';
import { lineChart } from './svg-chart.js';
import type { PerDeviceSummary, ReportInput, RunMetrics } from './metrics.js';

/** The charts of a report, as SVG strings keyed by file stem. */
export interface ReportCharts {
  accuracy: string;
  bytes: string;
  /** Absent when no run used differential privacy. */
  epsilon?: string;
}

export const percent = (value: number) => `${(value * 100).toFixed(1)}%`;

export function formatBytes(value: number): string {
  if (value >= 1024 * 1024) return `${(value / (1024 * 1024)).toFixed(1)} MiB`;
  if (value >= 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${value} B`;
}

/** Draws accuracy, ε (when any) and bytes per round; one series per run (two for bytes). */
export function renderCharts(input: ReportInput): ReportCharts {
  const accuracy = lineChart({
    title: 'Test accuracy by round',
    xLabel: 'round',
    yLabel: 'accuracy',
    series: input.runs.map((run) => ({
      name: run.label,
      points: run.metrics.map((m) => [m.round, m.accuracy] as const),
    })),
    references: input.baselines.map((baseline) => ({ name: baseline.label, y: baseline.accuracy })),
    formatY: (value) => percent(value),
  });
  const bytes = lineChart({
    title: 'Bytes moved by round',
    xLabel: 'round',
    yLabel: 'bytes',
    series: input.runs.flatMap((run) => [
      { name: `${run.label} up`, points: run.metrics.map((m) => [m.round, m.bytesUp] as const) },
      { name: `${run.label} down`, points: run.metrics.map((m) => [m.round, m.bytesDown] as const) },
    ]),
    formatY: formatBytes,
  });
  const withDp = input.runs.filter((run) => run.metrics.some((m) => m.epsilon !== null));
  if (withDp.length === 0) return { accuracy, bytes };
  const epsilon = lineChart({
    title: 'Privacy spent (ε) by round',
    xLabel: 'round',
    yLabel: 'ε',
    series: withDp.map((run) => ({
      name: run.label,
      points: run.metrics.map((m) => [m.round, m.epsilon] as const),
    })),
  });
  return { accuracy, bytes, epsilon };
}

/** Headline numbers of one run. */
export interface RunSummary {
  label: string;
  rounds: number;
  committed: number;
  rejected: number;
  abandoned: number;
  finalAccuracy: number | null;
  bestAccuracy: number | null;
  finalEpsilon: number | null;
  bytesUp: number;
  bytesDown: number;
  /** Adapter artifacts downloaded (full adapters, deltas); null when no round counted them. */
  adapterBytesDown: number | null;
}

export function summarizeRun(run: RunMetrics): RunSummary {
  const accuracies = run.metrics.map((m) => m.accuracy).filter((a): a is number => a !== null);
  const epsilons = run.metrics.map((m) => m.epsilon).filter((e): e is number => e !== null);
  // Round 0 is the starting point (base model, initial adapter), not a round that was decided.
  const rounds = run.metrics.filter((m) => m.round > 0);
  const count = (decision: string) => rounds.filter((m) => m.decision === decision).length;
  return {
    label: run.label,
    rounds: rounds.length,
    committed: count('COMMITTED'),
    rejected: count('REJECTED'),
    abandoned: count('ABANDONED'),
    finalAccuracy: accuracies[accuracies.length - 1] ?? null,
    bestAccuracy: accuracies.length > 0 ? Math.max(...accuracies) : null,
    finalEpsilon: epsilons[epsilons.length - 1] ?? null,
    bytesUp: run.metrics.reduce((sum, m) => sum + m.bytesUp, 0),
    bytesDown: run.metrics.reduce((sum, m) => sum + m.bytesDown, 0),
    adapterBytesDown: run.metrics.some((m) => m.adapterBytesDown !== undefined)
      ? run.metrics.reduce((sum, m) => sum + (m.adapterBytesDown ?? 0), 0)
      : null,
  };
}

const SUMMARY_HEADER = [
  'run',
  'rounds',
  'committed',
  'rejected',
  'abandoned',
  'final acc.',
  'best acc.',
  'final ε',
  'bytes up',
  'bytes down',
  'adapter bytes down',
];

function summaryCells(summary: RunSummary): string[] {
  return [
    summary.label,
    String(summary.rounds),
    String(summary.committed),
    String(summary.rejected),
    String(summary.abandoned),
    summary.finalAccuracy === null ? '–' : percent(summary.finalAccuracy),
    summary.bestAccuracy === null ? '–' : percent(summary.bestAccuracy),
    summary.finalEpsilon === null ? '–' : summary.finalEpsilon.toFixed(2),
    formatBytes(summary.bytesUp),
    formatBytes(summary.bytesDown),
    summary.adapterBytesDown === null ? '–' : formatBytes(summary.adapterBytesDown),
  ];
}

function roundCells(m: RunMetrics['metrics'][number]): string[] {
  const refused = Object.entries(m.refused)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([reason, count]) => `${reason}: ${count}`)
    .join(', ');
  return [
    String(m.round),
    m.accuracy === null ? '–' : percent(m.accuracy),
    m.loss === null ? '–' : m.loss.toFixed(3),
    String(m.participants),
    refused || '–',
    m.epsilon === null ? '–' : m.epsilon.toFixed(2),
    m.decision,
    m.reasons.join('; ') || '–',
  ];
}

const PER_DEVICE_TITLE = "### Per-device accuracy: the final model on each device's own held-out examples";
const PER_DEVICE_HEADER = ['devices', 'mean', 'worst 10%', 'lowest'];

function perDeviceCells(summary: PerDeviceSummary): string[] {
  return [String(summary.devices), percent(summary.mean), percent(summary.worst10), percent(summary.min)];
}

const ROUND_HEADER = ['round', 'accuracy', 'loss', 'participants', 'refused', 'ε', 'decision', 'reasons'];

const mdCell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');
export const mdRow = (cells: readonly string[]) => `| ${cells.map(mdCell).join(' | ')} |`;

/** report.md: summary, facts, inline SVG charts and per-round tables (GitHub renders the tables; the SVGs are also written as files). */
export function renderMarkdown(input: ReportInput, charts: ReportCharts = renderCharts(input)): string {
  const lines: string[] = [`# ${input.title}`, ''];
  if (input.description) lines.push(input.description, '');
  lines.push(`Backend: \`${input.backend}\``, '');
  const facts = Object.entries(input.facts);
  if (facts.length > 0 || input.baselines.length > 0) {
    lines.push('| fact | value |', '| --- | --- |');
    for (const baseline of input.baselines) lines.push(mdRow([baseline.label, percent(baseline.accuracy)]));
    for (const [key, value] of facts) lines.push(mdRow([key, value]));
    lines.push('');
  }
  lines.push('## Summary', '', mdRow(SUMMARY_HEADER), mdRow(SUMMARY_HEADER.map(() => '---')));
  for (const run of input.runs) lines.push(mdRow(summaryCells(summarizeRun(run))));
  if (input.perDevice)
    lines.push(
      '',
      PER_DEVICE_TITLE,
      '',
      mdRow(PER_DEVICE_HEADER),
      mdRow(PER_DEVICE_HEADER.map(() => '---')),
      mdRow(perDeviceCells(input.perDevice.summary)),
    );
  lines.push('', '## Charts', '', charts.accuracy, '');
  if (charts.epsilon !== undefined) lines.push(charts.epsilon, '');
  lines.push(charts.bytes, '');
  for (const run of input.runs) {
    lines.push(`## Rounds: ${run.label}`, '', mdRow(ROUND_HEADER), mdRow(ROUND_HEADER.map(() => '---')));
    for (const m of run.metrics) lines.push(mdRow(roundCells(m)));
    lines.push('');
    const attack = attackSection(run);
    if (attack !== null) {
      lines.push(`## ${attack.heading}`, '', ...attack.text.flatMap((t) => [t, '']));
      if (attack.rows.length > 0)
        lines.push(
          mdRow(attack.header),
          mdRow(attack.header.map(() => '---')),
          ...attack.rows.map(mdRow),
          '',
        );
    }
  }
  return lines.join('\n');
}

export const esc = (text: string) =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
export const htmlRow = (cells: readonly string[], tag = 'td') =>
  `<tr>${cells.map((c) => `<${tag}>${esc(c)}</${tag}>`).join('')}</tr>`;

/** The opening of a standalone report page (inline CSS, no scripts) up to its <h1>. */
export function htmlHead(title: string): string[] {
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${esc(title)}</title>`,
    '<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}' +
      'table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}' +
      'td:first-child,th:first-child{text-align:left}figure{margin:1em 0}</style>',
    '</head><body>',
    `<h1>${esc(title)}</h1>`,
  ];
}

/** report.html: the same content as the markdown, standalone (inline CSS and SVG, no scripts). */
export function renderHtml(input: ReportInput, charts: ReportCharts = renderCharts(input)): string {
  const parts: string[] = htmlHead(input.title);
  if (input.description) parts.push(`<p>${esc(input.description)}</p>`);
  parts.push(`<p>Backend: <code>${esc(input.backend)}</code></p>`);
  const facts = Object.entries(input.facts);
  if (facts.length > 0 || input.baselines.length > 0) {
    parts.push('<table>', htmlRow(['fact', 'value'], 'th'));
    for (const baseline of input.baselines) parts.push(htmlRow([baseline.label, percent(baseline.accuracy)]));
    for (const [key, value] of facts) parts.push(htmlRow([key, value]));
    parts.push('</table>');
  }
  parts.push('<h2>Summary</h2>', '<table>', htmlRow(SUMMARY_HEADER, 'th'));
  for (const run of input.runs) parts.push(htmlRow(summaryCells(summarizeRun(run))));
  parts.push('</table>');
  if (input.perDevice)
    parts.push(
      `<p>${esc(PER_DEVICE_TITLE.replace(/^#+ /, ''))}</p>`,
      '<table>',
      htmlRow(PER_DEVICE_HEADER, 'th'),
      htmlRow(perDeviceCells(input.perDevice.summary)),
      '</table>',
    );
  parts.push('<h2>Charts</h2>', `<figure>${charts.accuracy}</figure>`);
  if (charts.epsilon !== undefined) parts.push(`<figure>${charts.epsilon}</figure>`);
  parts.push(`<figure>${charts.bytes}</figure>`);
  for (const run of input.runs) {
    parts.push(`<h2>Rounds: ${esc(run.label)}</h2>`, '<table>', htmlRow(ROUND_HEADER, 'th'));
    for (const m of run.metrics) parts.push(htmlRow(roundCells(m)));
    parts.push('</table>');
    const attack = attackSection(run);
    if (attack !== null) {
      parts.push(`<h2>${esc(attack.heading)}</h2>`, ...attack.text.map((t) => `<p>${esc(t)}</p>`));
      if (attack.rows.length > 0)
        parts.push(
          '<table>',
          htmlRow(attack.header, 'th'),
          ...attack.rows.map((r) => htmlRow(r)),
          '</table>',
        );
    }
  }
  parts.push('</body></html>', '');
  return parts.join('\n');
}
