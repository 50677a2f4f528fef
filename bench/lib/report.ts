// The bench's output: rows of (section, measure, ours, reference, ratio) for the table, and the
// same rows plus machine facts in bench/results.json.

/** One line of the table. `ratio` is ours / reference (or as `ratioMeaning` says). */
export interface BenchRow {
  section: string;
  measure: string;
  ours: number | null;
  oursUnit: string;
  reference: number | null;
  referenceUnit: string;
  /** Name of what `reference` is (e.g. 'memcpy of the same bytes'). */
  referenceName: string;
  ratio: number | null;
  /** How to read the ratio, e.g. 'fedavg time / copy time (goal <= 2)'. */
  ratioMeaning: string;
  note?: string;
}

export interface SectionResult {
  rows: BenchRow[];
  /** Every raw figure of the section, for results.json. */
  details: Record<string, unknown>;
  /** Headline figures results.json also carries at its top level, by key. */
  keys?: Record<string, number>;
}

/** Formats a number with 3 significant digits, or '-' for missing values. */
export function fmt(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return '-';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

function withUnit(value: number | null, unit: string): string {
  const text = fmt(value);
  return text === '-' || unit === '' ? text : `${text} ${unit}`;
}

/** The table printed on stdout: fixed-width columns, one row per measure, notes underneath. */
export function formatTable(rows: readonly BenchRow[]): string {
  const header = ['section', 'measure', 'ours', 'reference', 'ratio'];
  const cells = rows.map((r) => [
    r.section,
    r.measure,
    withUnit(r.ours, r.oursUnit),
    r.reference === null ? r.referenceName : `${withUnit(r.reference, r.referenceUnit)} (${r.referenceName})`,
    r.ratio === null ? '-' : `${fmt(r.ratio)}  ${r.ratioMeaning}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]): string =>
    c
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join(' | ')
      .trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('-|-')];
  for (const c of cells) out.push(line(c));
  const notes = rows.filter((r) => r.note !== undefined);
  if (notes.length > 0) {
    out.push('', 'notes:');
    for (const r of notes) out.push(`  [${r.section}] ${r.measure}: ${r.note ?? ''}`);
  }
  return out.join('\n');
}
