// The pages that tell a contributor which files to edit name only files that exist and code that
// is in them: docs/architecture.md (where each round event is handled) and
// docs/adding-a-strategy.md. A rename that forgets the page fails here.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** The inline code spans of a page. */
function codeSpans(page: string): string[] {
  return [...page.matchAll(/`([^`\n]+)`/g)].map((m) => m[1] ?? '');
}

describe.each(['architecture.md', 'adding-a-strategy.md'])('docs/%s', (name) => {
  const spans = codeSpans(readFileSync(join(ROOT, 'docs', name), 'utf8'));
  const paths = [...new Set(spans.filter((s) => /^[\w-]+\/[\w/.-]*\.(ts|md)$/.test(s)))];
  const sources = paths.map((p) => (existsSync(join(ROOT, p)) ? readFileSync(join(ROOT, p), 'utf8') : ''));
  const occurs = (word: string): boolean =>
    sources.some((source) => new RegExp(`\\b${word}\\b`).test(source));

  it('names only files that exist (placeholders such as <name> aside)', () => {
    expect(paths.length).toBeGreaterThanOrEqual(6);
    expect(paths.filter((p) => !existsSync(join(ROOT, p)))).toEqual([]);
  });

  it('names only identifiers that occur in the files it names', () => {
    // `RoundManager.checkIn` names a class and a method; `STRATEGY_REGISTRY` a table.
    const identifiers = spans
      .filter((s) => /^[A-Za-z_]\w*(\.\w+)?$/.test(s) && !/\.(ts|md)$/.test(s))
      .flatMap((s) => s.split('.'));
    expect(identifiers.length).toBeGreaterThanOrEqual(4);
    expect(identifiers.filter((id) => !occurs(id))).toEqual([]);
  });
});
