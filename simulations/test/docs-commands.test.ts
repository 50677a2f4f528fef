import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../src/cli/program.js';
import { docCommands, parseError, shellWords } from './support/index.js';

// Every `flotilla` command line quoted in README.md and docs/*.md is parsed by the real CLI
// parser (commander, as `flotilla` builds it), so a flag or command the docs name and the CLI
// lacks fails here instead of in a reader's terminal. Parse only: every action is replaced by a
// no-op, nothing runs. A line is found where a reader finds one: in a fenced code block, in an
// inline code span, or in README's command table, started by `flotilla`, `npx flotilla`,
// `npm run flotilla --` or `node simulations/bin/flotilla.mjs` (after any `VAR=value`).
// Unknown commands and options, extra arguments and invalid values always fail. A line of a code
// block is meant to be run as it stands, so a missing argument or required option fails it too;
// an inline mention or a table row may leave them out ("`flotilla simulate` runs …").
// Placeholders stay as they are written: `<key>`, `[--round 12]` (the optional part is kept),
// `verify|show|export` (each alternative is parsed).

const root = join(import.meta.dirname, '..', '..');
const files = [
  join(root, 'README.md'),
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(root, 'docs', f)),
];

describe('the shell-word reading of a quoted command', () => {
  it('keeps placeholders whole, drops optional brackets and ellipses, stops at comments and pipes', () => {
    expect(shellWords('flotilla audit verify log.jsonl --key <coordinator public key>   # PASS')).toEqual([
      'flotilla',
      'audit',
      'verify',
      'log.jsonl',
      '--key',
      '<coordinator public key>',
    ]);
    expect(shellWords('flotilla audit show log.jsonl [--round 12] [--json] | jq .')).toEqual([
      'flotilla',
      'audit',
      'show',
      'log.jsonl',
      '--round',
      '12',
      '--json',
    ]);
    expect(shellWords(`flotilla aggregate --strategy "trimmed mean" a.safetensors …`)).toEqual([
      'flotilla',
      'aggregate',
      '--strategy',
      'trimmed mean',
      'a.safetensors',
    ]);
  });
});

describe('command lines quoted in the docs', () => {
  const commands = files.flatMap((file) => docCommands(file));

  it('are found in the code blocks, inline spans and the command table', () => {
    const kinds = new Set(commands.map((c) => c.kind));
    expect(kinds).toEqual(new Set(['block', 'inline', 'table']));
    // README's table lists every top-level command.
    const tabled = new Set(commands.filter((c) => c.kind === 'table').map((c) => c.args[0]));
    for (const command of buildProgram().commands) expect(tabled, command.name()).toContain(command.name());
  });

  it('all parse with the CLI (no unknown command, flag or value)', () => {
    const failures = commands.flatMap((doc) => {
      const error = parseError(buildProgram, doc);
      return error === null
        ? []
        : [`${doc.file.slice(root.length + 1)}:${doc.line} (${doc.kind}) ${doc.text}\n    ${error}`];
    });
    expect(failures).toEqual([]);
  });

  it('would catch a flag the CLI does not have', () => {
    const doc = {
      file: 'x.md',
      line: 1,
      kind: 'block' as const,
      text: '',
      args: ['audit', 'verify', '--file', 'x'],
    };
    expect(parseError(buildProgram, doc)).toMatch(/unknownOption/);
    const missing = { ...doc, args: ['audit', 'verify'] };
    expect(parseError(buildProgram, missing)).toMatch(/missingArgument/);
    expect(parseError(buildProgram, { ...missing, kind: 'inline' })).toBeNull();
    expect(parseError(buildProgram, { ...doc, args: ['audits'] })).toMatch(/unknownCommand/);
  });
});
