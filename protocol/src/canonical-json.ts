/**
 * JSON Canonicalization Scheme (RFC 8785): object keys sorted by UTF-16 code units, no
 * whitespace, numbers in ECMAScript shortest form (what JSON.stringify already emits for finite
 * numbers), strings escaped as JSON.stringify does. Signatures cover these bytes, so two
 * implementations that agree on RFC 8785 agree on every signature.
 *
 * Written as one loop per level that appends to a string, without a `map`/`filter`/`join` array
 * per object: every accepted update is canonicalised for its signature and its round-log leaf.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON cannot encode NaN or Infinity');
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object':
      return Array.isArray(value) ? canonicalArray(value) : canonicalObject(value as Record<string, unknown>);
    default:
      throw new TypeError(`canonical JSON cannot encode a ${typeof value}`);
  }
}

function canonicalArray(items: readonly unknown[]): string {
  let out = '[';
  for (let i = 0; i < items.length; i++) {
    if (i > 0) out += ',';
    // A hole of a sparse array stays empty (as `map` then `join` left it); undefined is null.
    if (i in items) out += canonicalJson(items[i] ?? null);
  }
  return `${out}]`;
}

function canonicalObject(record: Record<string, unknown>): string {
  // The default sort compares strings by UTF-16 code units, which is what RFC 8785 asks for.
  const keys = Object.keys(record).sort();
  let out = '{';
  for (const key of keys) {
    const item = record[key];
    if (item === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(key)}:${canonicalJson(item)}`;
  }
  return `${out}}`;
}
