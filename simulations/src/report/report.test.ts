import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { csvField, metricsToCsv } from './csv.js';
import { ReportInputSchema, RoundMetricsSchema, type ReportInputRaw } from './metrics.js';
import { renderCharts, renderHtml, renderMarkdown, summarizeRun } from './render.js';
import { lineChart, niceTicks, type ChartSeries } from './svg-chart.js';
import { writeReport } from './write.js';

/**
 * A minimal well-formedness check: every tag closes in order, attributes are quoted, and the
 * only entities are the five XML ones. Returns the element names in document order.
 */
function parseXmlTags(xml: string): string[] {
  const stack: string[] = [];
  const names: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<!--[\s\S]*?-->/g;
  let last = 0;
  for (let match = tag.exec(xml); match !== null; match = tag.exec(xml)) {
    const between = xml.slice(last, match.index);
    if (/[<>]/.test(between)) throw new Error(`stray markup near ${between.slice(0, 40)}`);
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(between)) throw new Error('bad entity');
    last = tag.lastIndex;
    const [, closing, name, , selfClosing] = match;
    if (name === undefined) continue;
    if (closing === '/') {
      if (stack.pop() !== name) throw new Error(`unbalanced </${name}>`);
    } else {
      names.push(name);
      if (selfClosing !== '/') stack.push(name);
    }
  }
  if (/[<>]/.test(xml.slice(last))) throw new Error('trailing markup');
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('>, <')}>`);
  return names;
}

const round = (n: number, extra: Partial<ReportInputRaw['runs'][number]['metrics'][number]> = {}) =>
  RoundMetricsSchema.parse({
    round: n,
    accuracy: 0.5 + n / 20,
    loss: 1 - n / 20,
    participants: 8,
    refused: n === 2 ? { NORM_EXCEEDED: 1, late: 2 } : {},
    bytesUp: 1000 * n,
    bytesDown: 2000,
    epsilon: null,
    decision: n === 3 ? 'REJECTED' : 'COMMITTED',
    reasons: n === 3 ? ['holdout accuracy dropped by 3.1%, > 2%'] : [],
    timings: { total: 100 * n },
    ...extra,
  });

const input: ReportInputRaw = {
  title: 'demo <test> & "quotes"',
  backend: 'cpu',
  runs: [
    { label: 'fedavg', metrics: [round(1), round(2), round(3)] },
    { label: 'dp z=1', metrics: [1, 2, 3].map((n) => round(n, { epsilon: 0.5 * n })) },
  ],
  baselines: [{ label: 'base (shifted)', accuracy: 0.42 }],
  facts: { dataset: 'mnist-rotated, 35°' },
};

describe('CSV (RFC 4180)', () => {
  it('quotes fields with commas, quotes, CR or LF and doubles quotes', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\r')).toBe('"cr\r"');
    expect(csvField(null)).toBe('');
    expect(csvField(0.25)).toBe('0.25');
  });

  it('writes a header, one row per run and round, union columns and CRLF endings', () => {
    const csv = metricsToCsv(ReportInputSchema.parse(input).runs);
    const lines = csv.split('\r\n');
    expect(lines[0]).toBe(
      'run,round,accuracy,loss,participants,refused.NORM_EXCEEDED,refused.late,bytesUp,bytesDown,adapterBytesDown,epsilon,decision,reasons,timing.total_ms',
    );
    expect(lines[1]).toBe('fedavg,1,0.55,0.95,8,0,0,1000,2000,,,COMMITTED,,100');
    expect(lines[2]).toBe('fedavg,2,0.6,0.9,8,1,2,2000,2000,,,COMMITTED,,200');
    expect(lines[3]).toBe(
      'fedavg,3,0.65,0.85,8,0,0,3000,2000,,,REJECTED,"holdout accuracy dropped by 3.1%, > 2%",300',
    );
    expect(lines[4]?.startsWith('dp z=1,1,')).toBe(true);
    expect(lines[6]).toContain(',1.5,REJECTED,');
    expect(lines).toHaveLength(8); // header + 6 rows + the empty string after the final CRLF
  });
});

describe('SVG charts', () => {
  /** A 640×360 chart of one series `s` over the y domain [0, 1]. */
  const unitChart = (series: Omit<ChartSeries, 'name'>) =>
    lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 's', ...series }], yDomain: [0, 1] });

  it('places points where the axis mapping says (hand-computed)', () => {
    // 640×360 with margins left 64, right 170, top 36, bottom 48: plot 406 × 276 px.
    // x ticks 0..10 step 2, y domain [0, 1]: (0, 0) -> (64, 312), (10, 1) -> (470, 36), (5, 0.5) -> (267, 174).
    const svg = unitChart({
      points: [
        [0, 0],
        [5, 0.5],
        [10, 1],
      ],
    });
    expect(svg).toContain('<polyline points="64,312 267,174 470,36"');
    expect(svg).toContain('<circle cx="267" cy="174"');
    parseXmlTags(svg);
  });

  it('shades a band from its lows and highs (hand-computed), split at gaps', () => {
    // Same mapping as above: (0, 0.2) -> (64, 256.8), (5, 0.6) -> (267, 146.4), (5, 0.4) -> (267, 201.6).
    const svg = unitChart({
      points: [
        [0, 0.1],
        [5, 0.5],
        [10, 1],
      ],
      band: [
        [0, 0, 0.2],
        [5, 0.4, 0.6],
        [10, null, null],
      ],
    });
    expect(svg).toContain('<polygon class="band" points="64,256.8 267,146.4 267,201.6 64,312"');
    expect(svg.match(/<polygon/g)).toHaveLength(1);
    parseXmlTags(svg);
  });

  it('splits lines at null values and escapes names', () => {
    const svg = lineChart({
      title: 'a < b',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        {
          name: 'R&D',
          points: [
            [1, 1],
            [2, null],
            [3, 2],
            [4, 3],
          ],
        },
      ],
    });
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    expect(svg).toContain('R&amp;D');
    expect(svg).toContain('<title>a &lt; b</title>');
    expect(parseXmlTags(svg).filter((name) => name === 'circle')).toHaveLength(3);
  });

  it('nice ticks are 1-2-5 steps covering the range', () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(1, 10, 8)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(0.13, 0.87, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(3, 3).length).toBeGreaterThan(1);
  });
});

describe('reports', () => {
  it('draw accuracy, ε (only DP runs) and bytes, and render well-formed, deterministic HTML', () => {
    const parsed = ReportInputSchema.parse(input);
    const charts = renderCharts(parsed);
    for (const svg of [charts.accuracy, charts.bytes, charts.epsilon ?? '']) parseXmlTags(svg);
    expect(charts.accuracy).toContain('data-name="fedavg"');
    expect(charts.accuracy).toContain('base (shifted): 42.0%');
    expect(charts.epsilon).toContain('data-name="dp z=1"');
    expect(charts.epsilon).not.toContain('data-name="fedavg"');
    expect(charts.bytes).toContain('data-name="fedavg up"');
    const html = renderHtml(parsed);
    expect(html).toBe(renderHtml(ReportInputSchema.parse(input)));
    parseXmlTags(
      html.replace('<!doctype html>', '').replace('<meta charset="utf-8">', '<meta charset="utf-8"/>'),
    );
    expect(html).toContain('demo &lt;test&gt; &amp; &quot;quotes&quot;');
    const md = renderMarkdown(parsed);
    expect(md).toContain('Backend: `cpu`');
    expect(md).toContain('| fedavg | 3 | 2 | 1 | 0 | 65.0% | 65.0% | – | 5.9 KiB | 5.9 KiB |');
    expect(summarizeRun(parsed.runs[1] ?? { label: 'x', metrics: [] }).finalEpsilon).toBe(1.5);
    expect(
      renderCharts({ ...parsed, runs: [parsed.runs[0] ?? { label: 'x', metrics: [] }] }).epsilon,
    ).toBeUndefined();
  });

  it('writes every file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-report-'));
    const written = writeReport(dir, input);
    expect(JSON.parse(readFileSync(written.json, 'utf8'))).toEqual(ReportInputSchema.parse(input));
    expect(readFileSync(written.csv, 'utf8').startsWith('run,round,')).toBe(true);
    expect(readFileSync(written.markdown, 'utf8')).toContain('## Rounds: dp z=1');
    expect(written.charts.map((path) => path.slice(dir.length + 1)).sort()).toEqual([
      'accuracy.svg',
      'bytes.svg',
      'epsilon.svg',
    ]);
    expect(() => writeReport(dir, { ...input, runs: [] })).toThrow();
  });
});
