// Reads the field tables of docs/protocol.md and compares them with the zod schemas they describe,
// so the spec a second implementation is written from cannot drift from the code.
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';

export const PROTOCOL_DOC = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');

/**
 * Cells of every table in the section under the heading `heading` (up to the next heading), header
 * and separator rows dropped.
 */
export function tablesUnder(heading: string, doc = PROTOCOL_DOC): string[][][] {
  const lines = doc.split('\n');
  const start = lines.findIndex((line) => /^#{2,4} /.test(line) && line.replace(/^#+ /, '') === heading);
  if (start < 0) throw new Error(`docs/protocol.md has no heading "${heading}"`);
  const tables: string[][][] = [];
  let rows: string[][] | null = null;
  for (const line of [...lines.slice(start + 1), '']) {
    if (/^#{1,4} /.test(line)) break;
    if (line.startsWith('|')) (rows ??= []).push(splitRow(line));
    else if (rows) {
      tables.push(rows.slice(2));
      rows = null;
    }
  }
  if (rows) tables.push(rows.slice(2));
  return tables;
}

/** The first table under a heading. */
export function tableAfter(heading: string, doc = PROTOCOL_DOC): string[][] {
  const table = tablesUnder(heading, doc)[0];
  if (!table || table.length === 0) throw new Error(`no table under "${heading}"`);
  return table;
}

function splitRow(line: string): string[] {
  return line
    .slice(1, line.lastIndexOf('|'))
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim());
}

/** The backticked tokens of a cell, in order. */
export function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1] ?? '');
}

/** What a documented field of a schema is, from its JSON Schema. */
export interface FieldInfo {
  required: boolean;
  hasDefault: boolean;
  defaultValue: unknown;
  /** Allowed values of an enum or literal. */
  values: unknown[] | null;
  leaf: boolean;
}

type JsonSchemaNode = {
  type?: string;
  properties?: Record<string, JsonSchemaNode>;
  required?: string[];
  additionalProperties?: JsonSchemaNode | boolean;
  anyOf?: JsonSchemaNode[];
  oneOf?: JsonSchemaNode[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
};

/** Every field path of a schema (`a.b.c`; a record's key is `*`), with what the docs must say. */
export function schemaFields(schema: z.ZodType, io: 'input' | 'output'): Map<string, FieldInfo> {
  const root = z.toJSONSchema(schema, { io, reused: 'inline', unrepresentable: 'any' }) as JsonSchemaNode;
  const out = new Map<string, FieldInfo>();
  const visit = (node: JsonSchemaNode, path: string, required: boolean): void => {
    const branches = node.anyOf ?? node.oneOf ?? [node];
    const nonNull = branches.filter((branch) => branch.type !== 'null');
    const object = nonNull.length === 1 ? nonNull[0] : undefined;
    const record =
      object?.properties === undefined && typeof object?.additionalProperties === 'object'
        ? object.additionalProperties
        : undefined;
    const hasChildren = object?.properties !== undefined || record?.properties !== undefined;
    if (path !== '') {
      const values = branches.flatMap(
        (branch) => branch.enum ?? (branch.const !== undefined ? [branch.const] : []),
      );
      out.set(path, {
        required,
        hasDefault: 'default' in node,
        defaultValue: node.default,
        values: values.length > 0 ? values : null,
        leaf: !hasChildren,
      });
    }
    const prefix = path === '' ? '' : `${path}.`;
    for (const [key, child] of Object.entries(object?.properties ?? {}))
      visit(child, `${prefix}${key}`, object?.required?.includes(key) ?? false);
    if (record?.properties !== undefined) visit(record, `${prefix}*`, true);
  };
  visit(root, '', true);
  return out;
}

/** A documented field: its path (`<module>` placeholders read as `*`) and its row's cells. */
export interface DocField {
  path: string;
  type: string;
  rule: string;
}

/** The rows of a `| Field | Type | Default | Meaning |` table, one entry per path in the Field cell. */
export function docFields(heading: string): DocField[] {
  return tableAfter(heading).flatMap(([field = '', type = '', rule = '']) =>
    codeSpans(field).map((path) => ({ path: path.replace(/<[^>]+>/g, '*'), type, rule })),
  );
}

/**
 * Problems between a field table and a schema: undocumented or unknown fields, a wrong Default
 * cell (`required`, `optional`, `computed…` or a JSON literal equal to the schema's default), or a
 * Type cell that does not name every allowed value of an enum.
 */
export function fieldTableProblems(heading: string, schema: z.ZodType, io: 'input' | 'output'): string[] {
  const fields = schemaFields(schema, io);
  const documented = docFields(heading);
  const problems: string[] = [];
  const paths = new Set<string>();
  for (const doc of documented) {
    if (paths.has(doc.path)) problems.push(`${doc.path}: documented twice`);
    paths.add(doc.path);
    const info = fields.get(doc.path);
    if (!info) {
      problems.push(`${doc.path}: documented but not in the schema`);
      continue;
    }
    problems.push(...ruleProblems(doc, info), ...typeProblems(doc, info));
  }
  for (const [path, info] of fields) {
    const covered = [...paths].some((doc) => path === doc || path.startsWith(`${doc}.`));
    if (info.leaf && !covered) problems.push(`${path}: in the schema but not documented`);
  }
  return problems;
}

function ruleProblems(doc: DocField, info: FieldInfo): string[] {
  const say = (message: string) => [`${doc.path}: ${message} (Default cell: "${doc.rule}")`];
  if (doc.rule === 'required')
    return info.required && !info.hasDefault
      ? []
      : say('documented required, but the schema does not require it');
  if (info.required && !info.hasDefault) return say('the schema requires it');
  if (doc.rule === 'optional')
    return info.hasDefault ? say(`the schema defaults it to ${JSON.stringify(info.defaultValue)}`) : [];
  if (doc.rule.startsWith('computed')) return [];
  const literal = /^`([^`]+)`/.exec(doc.rule)?.[1];
  if (literal === undefined) return say('expected required, optional, computed… or a `literal`');
  let documentedDefault: unknown;
  try {
    documentedDefault = JSON.parse(literal);
  } catch {
    return say('the default is not a JSON literal');
  }
  if (!info.hasDefault) return say('the schema has no default');
  return isDeepStrictEqual(documentedDefault, info.defaultValue)
    ? []
    : say(`the schema's default is ${JSON.stringify(info.defaultValue)}`);
}

function typeProblems(doc: DocField, info: FieldInfo): string[] {
  if (info.values === null) return [];
  const named = new Set(codeSpans(doc.type).map((span) => span.replace(/^"(.*)"$/, '$1')));
  return info.values
    .filter((value) => !named.has(String(value)))
    .map((value) => `${doc.path}: the Type cell does not name the allowed value ${JSON.stringify(value)}`);
}
