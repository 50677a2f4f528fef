import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { metricsToCsv } from './csv.js';
import { ReportInputSchema, type ReportInputRaw } from './metrics.js';
import { renderCharts, renderHtml, renderMarkdown } from './render.js';

/** Paths of the files {@link writeReport} wrote. */
export interface WrittenReport {
  json: string;
  csv: string;
  markdown: string;
  html: string;
  /** One .svg per chart. */
  charts: string[];
}

/**
 * Writes metrics.json, metrics.csv, report.md, report.html and the charts as .svg files into
 * `dir` (created if missing). The input is validated first; the output depends only on it.
 */
export function writeReport(dir: string, raw: ReportInputRaw): WrittenReport {
  const input = ReportInputSchema.parse(raw);
  mkdirSync(dir, { recursive: true });
  const charts = renderCharts(input);
  const written: WrittenReport = {
    json: join(dir, 'metrics.json'),
    csv: join(dir, 'metrics.csv'),
    markdown: join(dir, 'report.md'),
    html: join(dir, 'report.html'),
    charts: [],
  };
  writeFileSync(written.json, `${JSON.stringify(input, null, 2)}\n`);
  writeFileSync(written.csv, metricsToCsv(input.runs));
  writeFileSync(written.markdown, renderMarkdown(input, charts));
  writeFileSync(written.html, renderHtml(input, charts));
  for (const [name, svg] of Object.entries(charts)) {
    if (svg === undefined) continue;
    const path = join(dir, `${name}.svg`);
    writeFileSync(path, `${svg}\n`);
    written.charts.push(path);
  }
  return written;
}
