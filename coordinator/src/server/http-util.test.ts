import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { httpStatusOf } from './http-util.js';

const protocolDoc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'protocol.md'), 'utf8');

/** The HTTP column of docs/protocol.md's reason-code table, for the rows that name a status. */
function documentedStatuses(): Map<string, number> {
  const rows = protocolDoc.matchAll(/^\| `([A-Z_]+)` \|.*\| (\d{3}) \|$/gm);
  return new Map([...rows].map((m) => [m[1] ?? '', Number(m[2])]));
}

describe('the HTTP status of each error code', () => {
  it('is the one docs/protocol.md gives, for every code the table gives one', () => {
    const documented = documentedStatuses();
    expect(documented.size).toBeGreaterThanOrEqual(12);
    for (const [code, status] of documented) {
      const known = ERROR_CODES.find((c) => c === code);
      expect(known, code).toBeDefined();
      if (known) expect(httpStatusOf(known), code).toBe(status);
    }
  });

  it('exists for every code, a client error for all but INTERNAL', () => {
    for (const code of ERROR_CODES) {
      const status = httpStatusOf(code);
      if (code === 'INTERNAL') expect(status).toBe(500);
      else expect(status >= 400 && status < 500, `${code}: ${status}`).toBe(true);
    }
  });
});
