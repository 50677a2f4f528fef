import type { RunMetrics } from './metrics.js';

/** One CSV field per RFC 4180: quoted when it holds a comma, quote, CR or LF; quotes doubled. */
export function csvField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One CSV record, fields joined by commas (no line terminator). */
export function csvRecord(fields: ReadonlyArray<string | number | null | undefined>): string {
  return fields.map(csvField).join(',');
}

/**
 * metrics.csv: a header and one row per (run, round), CRLF line ends as RFC 4180 says. Refusal
 * reasons and timings become their own columns (`refused.<reason>`, `timing.<phase>_ms`), the
 * union over all rows, sorted, so every row has the same columns.
 */
export function metricsToCsv(runs: readonly RunMetrics[]): string {
  const refusedKeys = new Set<string>();
  const timingKeys = new Set<string>();
  for (const run of runs) {
    for (const row of run.metrics) {
      Object.keys(row.refused).forEach((key) => refusedKeys.add(key));
      Object.keys(row.timings).forEach((key) => timingKeys.add(key));
    }
  }
  const refused = [...refusedKeys].sort();
  const timings = [...timingKeys].sort();
  const header = [
    'run',
    'round',
    'accuracy',
    'loss',
    'participants',
    ...refused.map((key) => `refused.${key}`),
    'bytesUp',
    'bytesDown',
    'adapterBytesDown',
    'epsilon',
    'decision',
    'reasons',
    ...timings.map((key) => `timing.${key}_ms`),
  ];
  const lines = [csvRecord(header)];
  for (const run of runs) {
    for (const row of run.metrics) {
      lines.push(
        csvRecord([
          run.label,
          row.round,
          row.accuracy,
          row.loss,
          row.participants,
          ...refused.map((key) => row.refused[key] ?? 0),
          row.bytesUp,
          row.bytesDown,
          row.adapterBytesDown ?? null,
          row.epsilon,
          row.decision,
          row.reasons.join('; '),
          ...timings.map((key) => row.timings[key] ?? null),
        ]),
      );
    }
  }
  return `${lines.join('\r\n')}\r\n`;
}
