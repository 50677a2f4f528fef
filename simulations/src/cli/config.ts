import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SETTINGS } from './settings.js';

/**
 * Settings shared by the CLI commands. Precedence: command-line flag > environment variable >
 * config file (`--config flotilla.yaml` or FLOTILLA_CONFIG) > default.
 */
export const FlotillaConfigSchema = z.object({
  /** Directory for keys, the embedded Redis data, caches and the round log. */
  stateDir: z.string().min(1).default('.flotilla'),
  /** Redis to use; when absent a private redis-server is started under stateDir. */
  redisUrl: z.string().min(1).optional(),
  /** Prefix of every Redis key and BullMQ queue. */
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only')
    .default('flotilla'),
  /** Interface the coordinator listens on. Loopback by default. */
  host: z.string().min(1).default('127.0.0.1'),
  /** Coordinator port; 0 picks a free one. */
  port: z.coerce.number().int().min(0).max(65535).default(8787),
  /** URL devices and operator commands use to reach the coordinator. */
  coordinatorUrl: z.string().url().default('http://127.0.0.1:8787'),
  /** Bearer token for operator routes (enrollment tokens, tasks, rollback). */
  operatorToken: z.string().min(16).optional(),
  /** Bearer token for the read-only auditor API. */
  auditorToken: z.string().min(16).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type FlotillaConfig = z.infer<typeof FlotillaConfigSchema>;

const ENV_NAMES = Object.fromEntries(
  Object.entries(SETTINGS).map(([key, setting]) => [key, setting.env]),
) as Record<keyof FlotillaConfig, string>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Formats zod issues as `source: field.path: message` lines, so every error names its field. */
export function describeIssues(source: string, error: z.ZodError): string {
  return error.issues
    .map((issue) => `${source}: ${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('\n');
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ConfigError(
      `config file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`,
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ConfigError(`config file ${path} must hold a mapping`);
  const unknownKeys = Object.keys(parsed).filter((key) => !(key in ENV_NAMES));
  if (unknownKeys.length > 0) throw new ConfigError(`${path}: unknown field(s): ${unknownKeys.join(', ')}`);
  return parsed as Record<string, unknown>;
}

/** Resolves the configuration from flags, environment and an optional file, validated. */
export function loadConfig(
  flags: Partial<Record<keyof FlotillaConfig, unknown>> & { config?: string },
  env = process.env,
): FlotillaConfig {
  const file = flags.config ?? env.FLOTILLA_CONFIG;
  const fromFile = file ? readConfigFile(file) : {};
  const fromEnv: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(ENV_NAMES)) {
    const value = env[name];
    if (value !== undefined && value !== '') fromEnv[key] = value;
  }
  const fromFlags = Object.fromEntries(
    Object.entries(flags).filter(([key, value]) => key !== 'config' && value !== undefined),
  );
  const merged = { ...fromFile, ...fromEnv, ...fromFlags };
  const result = FlotillaConfigSchema.safeParse(merged);
  if (!result.success) {
    const source = file ? `config (${file}, environment, flags)` : 'config (environment, flags)';
    throw new ConfigError(describeIssues(source, result.error));
  }
  return { ...result.data, stateDir: resolve(result.data.stateDir) };
}
