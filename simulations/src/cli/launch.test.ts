import { describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { buildProgramFor, invokedCommand } from './launch.js';
import { buildProgram } from './program.js';
import { TOP_COMMANDS } from './top-commands.js';

/** Every help text of a command tree, by command path. */
function helpTexts(command: Command, path = ''): Map<string, string> {
  const here = path === '' ? command.name() : `${path} ${command.name()}`;
  const texts = new Map([[here, command.helpInformation()]]);
  for (const sub of command.commands) for (const [k, v] of helpTexts(sub, here)) texts.set(k, v);
  return texts;
}

describe('flotilla loads only the command it runs', () => {
  it('finds the command an argv names', () => {
    expect(invokedCommand(['--config', 'f.yaml', 'devices', 'list', '--json'])).toBe('devices');
    expect(invokedCommand(['help', 'audit'])).toBe('audit');
    expect(invokedCommand(['--help'])).toBeNull();
    expect(invokedCommand([])).toBeNull();
  });

  it('lists every command in the top-level help exactly as the whole program does', async () => {
    const full = buildProgram();
    expect((await buildProgramFor(['--help'])).helpInformation()).toBe(full.helpInformation());
    expect(TOP_COMMANDS.map((c) => c.name)).toEqual(full.commands.map((c) => c.name()));
  });

  it('defines the invoked command in full: the same help, options and sub-commands', async () => {
    const full = helpTexts(buildProgram());
    for (const { name } of TOP_COMMANDS) {
      const lazy = await buildProgramFor([name]);
      const command = lazy.commands.find((c) => c.name() === name);
      expect(command, name).toBeDefined();
      if (!command) continue;
      for (const [path, text] of helpTexts(command, 'flotilla')) expect(text, path).toBe(full.get(path));
      expect(lazy.helpInformation()).toBe(full.get('flotilla'));
    }
  });
});
