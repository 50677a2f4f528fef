// The `flotilla` command lines quoted in the documentation, found the way a reader finds them,
// and parsed by the real CLI parser without running anything.
import { readFileSync } from 'node:fs';
import { CommanderError, type Command } from 'commander';

/** One quoted command line: where it is, how it was quoted, its arguments after `flotilla`. */
export interface DocCommand {
  file: string;
  line: number;
  /** `block`: a line of a fenced code block (meant to be run as is); `inline` or `table`: a mention. */
  kind: 'block' | 'inline' | 'table';
  text: string;
  args: string[];
}

/** How the docs start the CLI; what follows is the command line. */
const LAUNCHERS = [
  ['flotilla'],
  ['npx', 'flotilla'],
  ['npm', 'run', 'flotilla', '--'],
  ['node', 'simulations/bin/flotilla.mjs'],
];

/**
 * Shell-like words: quotes group, `<placeholder with spaces>` is one word, `[optional]` brackets
 * are dropped (the optional part is kept), `…` / `...` are dropped, and an unquoted `#`, `|`, `>`
 * or `;` word ends the command (comment, pipe, redirect, next command).
 */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  let current = '';
  let started = false;
  let quote: '"' | "'" | null = null;
  let angle = 0;
  const flush = () => {
    if (started) words.push(current);
    current = '';
    started = false;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (quote) {
      if (c === quote) quote = null;
      else current += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      started = true;
      continue;
    }
    if (c === '<') angle++;
    if (c === '>' && angle > 0) angle--;
    else if (angle === 0 && /\s/.test(c)) {
      flush();
      continue;
    }
    if (angle === 0 && (c === '[' || c === ']')) continue;
    if (!started && angle === 0 && ['#', '|', ';', '>'].includes(c) && /\s|$/.test(text.charAt(i + 1))) break;
    current += c;
    started = true;
  }
  flush();
  return words.filter((w) => w !== '…' && w !== '...' && w !== '');
}

/** Arguments after a launcher, with leading `VAR=value` assignments skipped; null if none starts it. */
function commandArgs(words: string[]): string[] | null {
  let start = 0;
  while (/^[A-Z_][A-Z0-9_]*=/.test(words[start] ?? '')) start++;
  for (const launcher of LAUNCHERS)
    if (launcher.every((w, i) => words[start + i] === w)) return words.slice(start + launcher.length);
  return null;
}

/** `a b|c d` → `a b d`, `a c d`: the docs' shorthand for alternative sub-commands. */
function alternatives(args: string[]): string[][] {
  const at = args.findIndex((a) => /^[a-z-]+(\|[a-z-]+)+$/.test(a));
  if (at < 0) return [args];
  return (args[at] ?? '')
    .split('|')
    .flatMap((choice) => alternatives([...args.slice(0, at), choice, ...args.slice(at + 1)]));
}

/** Every quoted command line of a Markdown file. */
export function docCommands(file: string): DocCommand[] {
  const out: DocCommand[] = [];
  const add = (kind: DocCommand['kind'], line: number, text: string, prefix: string[] = []) => {
    const args = commandArgs(shellWords(text));
    const full = args === null ? (prefix.length > 0 ? shellWords(text) : null) : args;
    if (full === null || full.length === 0) return;
    // `flotilla <command> --help` is about every command, not a command line.
    if (full[0]?.startsWith('<')) return;
    for (const variant of alternatives(full))
      out.push({ file, line, kind, text: text.trim(), args: variant });
  };
  const lines = readFileSync(file, 'utf8').split('\n');
  let fenced = false;
  let pending = '';
  let commandTable = false;
  lines.forEach((raw, index) => {
    const n = index + 1;
    if (/^\s*```/.test(raw)) {
      fenced = !fenced;
      return;
    }
    if (fenced) {
      // A trailing backslash continues the command on the next line.
      const joined = pending + raw.replace(/^\s*\$\s+/, '');
      if (joined.trimEnd().endsWith('\\')) pending = `${joined.trimEnd().slice(0, -1)} `;
      else {
        pending = '';
        add('block', n, joined);
      }
      return;
    }
    // README's command table: the first cell names a sub-command of `flotilla`.
    if (/^\|\s*command\s*\|/i.test(raw)) commandTable = true;
    else if (!raw.startsWith('|')) commandTable = false;
    const cells = raw.replace(/\\\|/g, '\u0000').split('|');
    for (const span of raw.matchAll(/`([^`]+)`/g)) {
      const text = (span[1] ?? '').replace(/\\\|/g, '|');
      const inFirstCell = commandTable && (cells[1] ?? '').replace(/\u0000/g, '\\|').includes(span[0]);
      if (inFirstCell && !/^-+$/.test(text)) add('table', n, `flotilla ${text}`);
      else add('inline', n, text);
    }
  });
  return out;
}

/** Every command and sub-command, depth first. */
function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap((sub) => allCommands(sub))];
}

/**
 * Makes `program` parse only: no action runs, nothing is printed, and every parse error throws a
 * CommanderError instead of exiting the process. `lenient` (for a mention, not a line to run):
 * arguments, required options and option values may be left out; unknown commands and options,
 * extra arguments and invalid values still fail.
 */
export function parseOnly(program: Command, options: { lenient?: boolean } = {}): Command {
  for (const command of allCommands(program)) {
    command.exitOverride();
    command.configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
    // A command with sub-commands and no action shows its help; leave that as it is.
    if (command.commands.length === 0) command.action(() => undefined);
    if (!options.lenient) continue;
    for (const argument of command.registeredArguments) argument.required = false;
    for (const option of command.options) {
      option.mandatory = false;
      if (option.required) {
        option.required = false;
        option.optional = true;
      }
    }
  }
  return program;
}

/** Parses the quoted command; returns null when the parser accepts it, else the parser's complaint. */
export function parseError(build: () => Command, doc: DocCommand): string | null {
  const program = parseOnly(build(), { lenient: doc.kind !== 'block' });
  try {
    program.parse(doc.args, { from: 'user' });
    return null;
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    // A parent command named alone shows its sub-commands: a mention of a real command.
    if (doc.kind !== 'block' && error.code === 'commander.help') return null;
    return `${error.code}: ${error.message}`;
  }
}
