import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { FlotillaError } from '@flotilla/protocol';
import { ScenarioSchema, type Scenario } from './schema.js';

/** The folder of the built-in scenarios (`simulations/scenarios`). */
export const BUILTIN_SCENARIO_DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));

/** Formats zod issues as `field.path: message`, one per line. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map(
      (issue) => `${issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)'}: ${issue.message}`,
    )
    .join('\n');
}

/** Validates an already-parsed value; throws BAD_REQUEST naming every bad field. */
export function validateScenario(value: unknown, source = 'scenario'): Scenario {
  const result = ScenarioSchema.safeParse(value);
  if (!result.success) {
    throw new FlotillaError('BAD_REQUEST', `${source} is invalid:\n${formatIssues(result.error.issues)}`);
  }
  return result.data;
}

/** Parses scenario text, YAML or JSON (JSON is YAML 1.2, so one parser reads both). */
export function parseScenario(text: string, source = 'scenario'): Scenario {
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new FlotillaError('BAD_REQUEST', `${source} is not valid YAML/JSON: ${reason}`);
  }
  return validateScenario(value, source);
}

/** Reads and validates a scenario file (.yaml, .yml or .json). */
export function loadScenarioFile(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new FlotillaError('NOT_FOUND', `scenario file ${path} cannot be read`);
  }
  return parseScenario(text, path);
}

/** Names of the built-in scenarios (file names without .yaml), sorted. */
export function listBuiltinScenarios(): string[] {
  return readdirSync(BUILTIN_SCENARIO_DIR)
    .filter((file) => file.endsWith('.yaml'))
    .map((file) => basename(file, '.yaml'))
    .sort();
}

/** A built-in scenario by name (e.g. 'demo'), or a path to a scenario file. */
export function loadScenario(nameOrPath: string): Scenario {
  if (/^[a-z0-9.-]+$/.test(nameOrPath) && listBuiltinScenarios().includes(nameOrPath)) {
    return loadScenarioFile(join(BUILTIN_SCENARIO_DIR, `${nameOrPath}.yaml`));
  }
  return loadScenarioFile(nameOrPath);
}
