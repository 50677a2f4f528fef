import { readFileSync } from 'node:fs';
import { FlotillaError } from '@flotilla/protocol';
import { encodeLabels, groupByUser, labeledData, type LabeledData } from './labeled.js';

/**
 * Splits CSV text into rows of fields (RFC 4180): fields may be quoted with `"`, a quoted field
 * may hold delimiters, line breaks and doubled quotes (`""`); lines end in LF or CRLF. A final
 * empty line is ignored.
 */
export function parseCsv(text: string, delimiter = ','): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const endField = () => {
    row.push(field);
    field = '';
  };
  const endRow = () => {
    endField();
    rows.push(row);
    row = [];
  };
  while (i < text.length) {
    const ch = text[i] ?? '';
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (ch === '"') quoted = false;
      else field += ch;
      i++;
      continue;
    }
    if (ch === '"' && field === '') quoted = true;
    else if (ch === delimiter) endField();
    else if (ch === '\n') endRow();
    else if (ch === '\r' && text[i + 1] === '\n') {
      endRow();
      i++;
    } else field += ch;
    i++;
  }
  if (quoted) throw new FlotillaError('CORRUPT_FILE', 'csv: a quoted field is not closed');
  if (field !== '' || row.length > 0) endRow();
  return rows;
}

/** Options for {@link loadCsvDataset}. */
export interface CsvDatasetOptions {
  path: string;
  /** Column of the label, by header name or 0-based index. Default: the last column. */
  label?: string | number;
  /** Column naming each example's user (gives a per-user split). Default: none. */
  user?: string | number;
  /** Feature columns. Default: every column but the label and user columns. */
  features?: Array<string | number>;
  /** Field separator. Default ','. */
  delimiter?: string;
}

/**
 * Reads a CSV table with a header row: numeric feature columns, a label column (class indices,
 * or names mapped to indices in sorted order) and optionally a user column.
 */
export function loadCsvDataset(options: CsvDatasetOptions): LabeledData {
  const rows = parseCsv(readFileSync(options.path, 'utf8'), options.delimiter ?? ',');
  const [header, ...body] = rows;
  if (!header || body.length === 0)
    throw new FlotillaError('BAD_REQUEST', `${options.path}: needs a header row and at least one data row`);
  const column = (spec: string | number, role: string): number => {
    const index = typeof spec === 'number' ? spec : header.indexOf(spec);
    if (!Number.isInteger(index) || index < 0 || index >= header.length)
      throw new FlotillaError(
        'BAD_REQUEST',
        `${options.path}: no ${role} column ${JSON.stringify(spec)} (columns: ${header.join(', ')})`,
      );
    return index;
  };
  const labelColumn = column(options.label ?? header.length - 1, 'label');
  const userColumn = options.user === undefined ? null : column(options.user, 'user');
  const featureColumns = (
    options.features ?? header.map((_, i) => i).filter((i) => i !== labelColumn && i !== userColumn)
  ).map((spec) => column(spec, 'feature'));
  if (featureColumns.length === 0)
    throw new FlotillaError('BAD_REQUEST', `${options.path}: no feature columns`);
  const dim = featureColumns.length;
  const xs = new Float32Array(body.length * dim);
  body.forEach((row, r) => {
    if (row.length !== header.length)
      throw new FlotillaError(
        'BAD_REQUEST',
        `${options.path}: row ${r + 2} has ${row.length} fields, the header ${header.length}`,
      );
    featureColumns.forEach((c, k) => {
      const text = (row[c] ?? '').trim();
      const value = Number(text);
      if (text === '' || !Number.isFinite(value))
        throw new FlotillaError(
          'BAD_REQUEST',
          `${options.path}: row ${r + 2}, column ${header[c] ?? c}: ${JSON.stringify(row[c])} is not a number`,
        );
      xs[r * dim + k] = value;
    });
  });
  const { ys, classNames } = encodeLabels(body.map((row) => (row[labelColumn] ?? '').trim()));
  const users = userColumn === null ? null : groupByUser(body.map((row) => (row[userColumn] ?? '').trim()));
  return labeledData({ xs, ys, shape: [dim], classNames, users });
}
