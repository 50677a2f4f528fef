import { describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { buildProgram } from './program.js';
import { SETTINGS } from './settings.js';

/** Every leaf command with the full text its --help prints (addHelpText sections included). */
function leafHelps(
  command: Command,
  path: string[] = [],
): Array<{ path: string; help: string; description: string }> {
  const here = [...path, command.name()];
  if (command.commands.length > 0)
    return command.commands.filter((c) => c.name() !== 'help').flatMap((c) => leafHelps(c, here));
  let help = '';
  command.configureOutput({ writeOut: (text) => (help += text), writeErr: (text) => (help += text) });
  command.outputHelp();
  const group = command.parent?.parent ? command.parent.description() : '';
  return [{ path: here.join(' '), help, description: `${group} ${command.description()}` }];
}

const KNOWN = new Set([...Object.values(SETTINGS).map((s) => s.env), 'FLOTILLA_CONFIG', 'FLOTILLA_DEBUG']);

describe('--help names the environment variables a command reads', () => {
  const leaves = leafHelps(buildProgram());

  it('lists only variables flotilla reads', () => {
    for (const { path, help } of leaves) {
      const section = help.split('\nEnvironment')[1] ?? '';
      for (const name of section.match(/^ {2}([A-Z_]+) /gm) ?? []) expect(KNOWN, path).toContain(name.trim());
    }
  });

  it('every command that needs the operator token names it and FLOTILLA_URL', () => {
    const operator = leaves.filter((l) => l.description.includes('operator token required'));
    expect(operator.map((l) => l.path)).toEqual(
      expect.arrayContaining([
        'flotilla devices list',
        'flotilla tasks create',
        'flotilla adapters rollback',
      ]),
    );
    for (const { path, help } of operator) {
      expect(help, path).toContain('FLOTILLA_OPERATOR_TOKEN  operator bearer token, at least 16 characters');
      expect(help, path).toContain('FLOTILLA_URL');
    }
  });

  it('names the settings of the commands that reach a coordinator or Redis', () => {
    const help = (path: string) => leaves.find((l) => l.path === path)?.help ?? '';
    expect(help('flotilla device')).toContain('FLOTILLA_URL');
    expect(help('flotilla adapters list')).toContain('FLOTILLA_URL');
    expect(help('flotilla audit export')).toContain('REDIS_URL');
    expect(help('flotilla coordinator')).toMatch(/FLOTILLA_OPERATOR_TOKEN[\s\S]*FLOTILLA_AUDITOR_TOKEN/);
    expect(help('flotilla worker')).toContain('REDIS_URL');
  });
});
