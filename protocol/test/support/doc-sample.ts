import { readFileSync } from 'node:fs';

/**
 * The `name = value` (or `name = formula = value`) lines of the first text block after `heading`
 * in docs/auditing.md, as written there: tests redo the doc's worked examples from the doc itself.
 */
export function auditingDocSample(heading: string): { names: string[]; value: (name: string) => string } {
  const doc = readFileSync(new URL('../../../docs/auditing.md', import.meta.url), 'utf8');
  const start = doc.indexOf(heading);
  if (start < 0) throw new Error(`docs/auditing.md has no "${heading}" section`);
  const block = /```text\n([\s\S]*?)```/.exec(doc.slice(start));
  if (block?.[1] === undefined) throw new Error(`the "${heading}" section has no text block`);
  const values = new Map<string, string>();
  for (const line of block[1].trim().split('\n')) {
    const match = /^(\w+)\s*=\s*(.*)$/.exec(line.trim());
    if (match?.[1] === undefined || match[2] === undefined) throw new Error(`unreadable line: ${line}`);
    values.set(match[1], (match[2].split(/\s+=\s+/).at(-1) ?? '').trim());
  }
  return {
    names: [...values.keys()],
    value: (name) => {
      const found = values.get(name);
      if (found === undefined) throw new Error(`the doc gives no value for ${name}`);
      return found;
    },
  };
}
