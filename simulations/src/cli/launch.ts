import { Help, type Command } from 'commander';
import { createRootCommand } from './root.js';
import { TOP_COMMANDS } from './top-commands.js';

/** The top-level command an argv names (`flotilla [--config f] <command> …`, `flotilla help <command>`). */
export function invokedCommand(args: readonly string[]): string | null {
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--config') i++;
    else if (!arg.startsWith('-')) words.push(arg);
  }
  return words[0] === 'help' ? (words[1] ?? null) : (words[0] ?? null);
}

/**
 * The `flotilla` program for one invocation: the command `args` names is defined in full (its
 * module loaded), every other top-level command is a stub that only lists itself in the help, so
 * `flotilla --help` and light commands load neither the coordinator, BullMQ nor tfjs.
 */
export async function buildProgramFor(args: readonly string[]): Promise<Command> {
  const program = createRootCommand();
  const name = invokedCommand(args);
  const wanted = TOP_COMMANDS.find((command) => command.name === name);
  if (wanted) (await wanted.load())(program);
  const terms = new Map<Command, string>();
  for (const { name: stubName, term, description } of TOP_COMMANDS) {
    if (program.commands.some((command) => command.name() === stubName)) continue;
    terms.set(program.command(stubName).description(description), term);
  }
  // In the table's order, as the full program lists them (the loaded one was added first).
  const order = TOP_COMMANDS.map((command) => command.name);
  (program.commands as Command[]).sort((a, b) => order.indexOf(a.name()) - order.indexOf(b.name()));
  const help = new Help();
  program.configureHelp({ subcommandTerm: (command) => terms.get(command) ?? help.subcommandTerm(command) });
  return program;
}
