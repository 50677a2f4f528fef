import type { Command } from 'commander';
import type { FlotillaConfig } from './config.js';

/**
 * The settings `flotilla` commands read (config.ts parses them): the environment variable of each,
 * and what the help says about it. Precedence: flag > environment > config file > default.
 */
export const SETTINGS = {
  stateDir: {
    env: 'FLOTILLA_STATE_DIR',
    help: 'keys, blobs, embedded Redis, caches, round log (default .flotilla)',
  },
  redisUrl: {
    env: 'REDIS_URL',
    help: 'redis://host:port or unix:///path.sock (unset: a private redis-server)',
  },
  prefix: { env: 'FLOTILLA_PREFIX', help: 'prefix of every Redis key and queue (default flotilla)' },
  host: { env: 'FLOTILLA_HOST', help: 'interface the coordinator listens on (default 127.0.0.1)' },
  port: { env: 'FLOTILLA_PORT', help: 'coordinator port (default 8787; 0 picks a free one)' },
  coordinatorUrl: { env: 'FLOTILLA_URL', help: 'URL of the coordinator (default http://127.0.0.1:8787)' },
  operatorToken: { env: 'FLOTILLA_OPERATOR_TOKEN', help: 'operator bearer token, at least 16 characters' },
  auditorToken: {
    env: 'FLOTILLA_AUDITOR_TOKEN',
    help: 'read-only auditor bearer token, at least 16 characters',
  },
  logLevel: { env: 'FLOTILLA_LOG_LEVEL', help: 'fatal, error, warn, info (default), debug, trace or silent' },
} as const satisfies Record<keyof FlotillaConfig, { env: string; help: string }>;

export type SettingName = keyof typeof SETTINGS;

/** Read by every command: where the settings file is, and whether errors print their stack. */
const ALWAYS: ReadonlyArray<[string, string]> = [
  ['FLOTILLA_CONFIG', 'a YAML or JSON file with any of these settings (like --config)'],
  ['FLOTILLA_DEBUG', '1 prints the stack of an error'],
];

/** The `Environment:` section of a command's help, for the settings it reads. */
export function environmentHelp(settings: readonly SettingName[]): string {
  const rows: Array<[string, string]> = [
    ...settings.map((name): [string, string] => [SETTINGS[name].env, SETTINGS[name].help]),
    ...ALWAYS,
  ];
  const width = Math.max(...rows.map(([env]) => env.length));
  return `\nEnvironment (a flag wins over its variable, a variable over the config file):\n${rows
    .map(([env, help]) => `  ${env.padEnd(width)}  ${help}`)
    .join('\n')}\n`;
}

/**
 * Names in `command`'s help (and in every sub-command's, for a group) the environment variables
 * of the settings it reads.
 */
export function describeEnvironment(command: Command, settings: readonly SettingName[]): Command {
  if (command.commands.length === 0) command.addHelpText('after', environmentHelp(settings));
  for (const sub of command.commands) describeEnvironment(sub, settings);
  return command;
}

/** `describeEnvironment` for the command at `path` under `root` (e.g. `adapters rollback`). */
export function describeEnvironmentAt(root: Command, path: string, settings: readonly SettingName[]): void {
  let command: Command | undefined = root;
  for (const name of path.split(' ')) command = command?.commands.find((c) => c.name() === name);
  if (!command) throw new Error(`no command "${path}" to describe`);
  describeEnvironment(command, settings);
}
