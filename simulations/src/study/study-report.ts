// The comparison report of a study (repeats of one scenario, or every cell of a sweep): a table of
// means with 95% intervals, and plots whose bands are those intervals.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { esc, formatBytes, htmlHead, htmlRow, mdRow, percent } from '../report/render.js';
import type { MeanInterval } from '../report/statistics.js';
import { lineChart } from '../report/svg-chart.js';
import { ROUND_METRICS, type RoundMetricName, type RunMetricName, type StudyCell } from './aggregate.js';

export interface StudyReportInput {
  title: string;
  description?: string;
  backend: string;
  /** Key facts (what was varied, the base scenario, how to reproduce). */
  facts: Record<string, string>;
  cells: StudyCell[];
}

/** "76.8% ± 1.2 pp": a mean of fractions and the half width of its 95% interval. */
function pctInterval(interval: MeanInterval | null): string {
  if (interval === null) return '–';
  const half = interval.halfWidth === null ? '' : ` ± ${(100 * interval.halfWidth).toFixed(1)}`;
  return `${percent(interval.mean)}${half}`;
}

function numInterval(
  interval: MeanInterval | null,
  digits: number,
  format = (v: number) => v.toFixed(digits),
) {
  if (interval === null) return '–';
  return `${format(interval.mean)}${interval.halfWidth === null ? '' : ` ± ${format(interval.halfWidth)}`}`;
}

const megabytes = (v: number) => (v / 1e6).toFixed(2);

/** Rounds to the target: the interval over the runs that reached it, and how many did. */
function roundsCell(cell: StudyCell): string {
  const r = cell.roundsToTarget;
  if (r === null) return '–';
  const rounds = Math.max(0, ...cell.rounds.map((x) => x.round));
  if (r.reached === 0) return `not within ${rounds} (0/${r.of})`;
  const text = numInterval(r.interval, 1);
  return r.reached === r.of ? text : `${text} (${r.reached}/${r.of}; the rest not within ${rounds})`;
}

/** Columns shown only when some cell has a value: the attacked runs' backdoor and detection figures. */
const ATTACK_COLUMNS = [
  ['finalBackdoorAccuracy', 'backdoor accuracy'],
  ['attackPrecision', 'attack precision'],
  ['attackRecall', 'attack recall'],
] as const satisfies ReadonlyArray<readonly [RunMetricName, string]>;

const attackColumns = (cells: readonly StudyCell[]) =>
  ATTACK_COLUMNS.filter(([name]) => cells.some((c) => c.runs[name] !== null));

function header(cells: readonly StudyCell[]): string[] {
  const target = cells.find((c) => c.roundsToTarget !== null)?.roundsToTarget?.target;
  return [
    'configuration',
    'seeds',
    ...(target !== undefined ? [`rounds to ≥ ${percent(target)}`] : []),
    'final accuracy',
    'best accuracy',
    'MB up',
    'MB down',
    'ε',
    'wall time (s)',
    'per-device mean',
    'per-device worst 10%',
    ...attackColumns(cells).map(([, title]) => title),
  ];
}

function row(cell: StudyCell, cells: readonly StudyCell[]): string[] {
  const { runs } = cell;
  const withTarget = cells.some((c) => c.roundsToTarget !== null);
  return [
    cell.label,
    cell.seeds.join(', '),
    ...(withTarget ? [roundsCell(cell)] : []),
    pctInterval(runs.finalAccuracy),
    pctInterval(runs.bestAccuracy),
    numInterval(runs.bytesUp, 2, megabytes),
    numInterval(runs.bytesDown, 2, megabytes),
    numInterval(runs.finalEpsilon, 2),
    numInterval(runs.wallSeconds, 0),
    pctInterval(runs.perDeviceMean),
    pctInterval(runs.perDeviceWorst10),
    ...attackColumns(cells).map(([name]) => pctInterval(runs[name])),
  ];
}

/** One line per cell (its mean) with its 95% band. */
function chart(cells: readonly StudyCell[], metric: RoundMetricName, title: string, yLabel: string): string {
  return lineChart({
    title,
    xLabel: 'round',
    yLabel,
    series: cells.map((cell) => ({
      name: cell.label,
      points: cell.rounds.map((r) => [r.round, r.values[metric]?.mean ?? null] as const),
      band: cell.rounds.map(
        (r) => [r.round, r.values[metric]?.low ?? null, r.values[metric]?.high ?? null] as const,
      ),
    })),
    ...(metric === 'accuracy' || metric === 'backdoorAccuracy'
      ? { formatY: percent }
      : metric === 'bytesUp'
        ? { formatY: formatBytes }
        : {}),
  });
}

/** study.csv: cell, round and each per-round metric's mean, low and high (95%). */
function studyCsv(cells: readonly StudyCell[]): string {
  const metrics = ROUND_METRICS;
  const quote = (text: string) => (/[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);
  const lines = [
    [
      'configuration',
      'runs',
      'round',
      ...metrics.flatMap((m) => [`${m}_mean`, `${m}_low`, `${m}_high`]),
    ].join(','),
  ];
  for (const cell of cells)
    for (const r of cell.rounds) {
      const values = metrics.flatMap((m) => {
        const v = r.values[m];
        return [v?.mean, v?.low, v?.high].map((x) => (x === null || x === undefined ? '' : String(x)));
      });
      lines.push([quote(cell.label), String(cell.seeds.length), String(r.round), ...values].join(','));
    }
  return `${lines.join('\r\n')}\r\n`;
}

const INTERVAL_NOTE =
  'Each number is the mean over the seeds ± the half width of its 95% confidence interval (Student t, n − 1 degrees of freedom); bands in the plots are the same intervals, round by round. Rounds to the target count the first round whose test accuracy reached it; the interval is over the runs that reached it.';

/** Writes study.json, study.csv, report.md, report.html and the plots into `dir`. */
export function writeStudyReport(dir: string, input: StudyReportInput): { markdown: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const backdoor = input.cells.some((c) => c.rounds.some((r) => r.values.backdoorAccuracy !== null));
  const charts: Record<string, string> = {
    accuracy: chart(input.cells, 'accuracy', 'Test accuracy by round (mean, 95% band)', 'accuracy'),
    loss: chart(input.cells, 'loss', 'Test loss by round (mean, 95% band)', 'loss'),
    ...(backdoor
      ? {
          backdoor: chart(
            input.cells,
            'backdoorAccuracy',
            'Backdoor accuracy by round (mean, 95% band)',
            'backdoor accuracy',
          ),
        }
      : {}),
  };
  const head = header(input.cells);
  const facts = Object.entries(input.facts);
  const md: string[] = [`# ${input.title}`, ''];
  if (input.description) md.push(input.description, '');
  md.push(`Backend: \`${input.backend}\``, '');
  if (facts.length > 0) {
    md.push('| fact | value |', '| --- | --- |');
    for (const [key, value] of facts) md.push(mdRow([key, value]));
    md.push('');
  }
  md.push('## Comparison', '', INTERVAL_NOTE, '', mdRow(head), mdRow(head.map(() => '---')));
  for (const cell of input.cells) md.push(mdRow(row(cell, input.cells)));
  const unverified = input.cells.reduce((n, c) => n + c.unverified, 0);
  md.push(
    '',
    unverified === 0
      ? 'Every run’s round log verified.'
      : `**${unverified} run(s) whose round log did not verify.**`,
  );
  md.push('', '## Charts', '', ...Object.values(charts).flatMap((svg) => [svg, '']));

  const html = htmlHead(input.title);
  if (input.description) html.push(`<p>${esc(input.description)}</p>`);
  html.push(`<p>Backend: <code>${esc(input.backend)}</code></p>`);
  if (facts.length > 0) {
    html.push('<table>', htmlRow(['fact', 'value'], 'th'));
    for (const [key, value] of facts) html.push(htmlRow([key, value]));
    html.push('</table>');
  }
  html.push('<h2>Comparison</h2>', `<p>${esc(INTERVAL_NOTE)}</p>`, '<table>', htmlRow(head, 'th'));
  for (const cell of input.cells) html.push(htmlRow(row(cell, input.cells)));
  html.push('</table>', '<h2>Charts</h2>', ...Object.values(charts).map((svg) => `<figure>${svg}</figure>`));
  html.push('</body></html>', '');

  const written = { markdown: join(dir, 'report.md'), html: join(dir, 'report.html') };
  writeFileSync(join(dir, 'study.json'), `${JSON.stringify(input, null, 2)}\n`);
  writeFileSync(join(dir, 'study.csv'), studyCsv(input.cells));
  writeFileSync(written.markdown, md.join('\n'));
  writeFileSync(written.html, html.join('\n'));
  for (const [name, svg] of Object.entries(charts)) writeFileSync(join(dir, `${name}.svg`), `${svg}\n`);
  return written;
}

/** The comparison table for a terminal: one line per cell. */
export function studySummary(cells: readonly StudyCell[]): string {
  const withTarget = cells.some((c) => c.roundsToTarget !== null);
  const head = header(cells).slice(0, withTarget ? 5 : 4);
  const rows = cells.map((c) => row(c, cells).slice(0, head.length));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
