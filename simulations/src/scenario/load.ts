import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { FlotillaError, safeParseStrict } from '@flotilla/protocol';
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
  // Strict everywhere, also inside the protocol schemas a scenario embeds (`strategy`).
  const result = safeParseStrict(ScenarioSchema, value);
  if (!result.success) {
    throw new FlotillaError('BAD_REQUEST', `${source} is invalid:\n${formatIssues(result.error.issues)}`);
  }
  return result.data;
}

/** Parses YAML or JSON text (JSON is YAML 1.2, so one parser reads both); BAD_REQUEST naming `source`. */
export function parseYamlDocument(text: string, source: string): unknown {
  try {
    return parseYaml(text) as unknown;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new FlotillaError('BAD_REQUEST', `${source} is not valid YAML/JSON: ${reason}`);
  }
}

/** Reads and parses a YAML or JSON file; NOT_FOUND when it cannot be read. */
export function readYamlFile(path: string, what = 'scenario file'): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new FlotillaError('NOT_FOUND', `${what} ${path} cannot be read`);
  }
  return parseYamlDocument(text, path);
}

/** Parses scenario text, YAML or JSON. */
export function parseScenario(text: string, source = 'scenario'): Scenario {
  return validateScenario(parseYamlDocument(text, source), source);
}

/** The scenario with its data and model paths made absolute, relative ones taken from `dir`. */
export function resolveScenarioPaths(scenario: Scenario, dir: string): Scenario {
  const at = (path: string | undefined) => (path === undefined ? undefined : resolve(dir, path));
  const { source, model } = scenario;
  return {
    ...scenario,
    ...(source
      ? {
          source: {
            ...source,
            path: resolve(dir, source.path),
            ...(source.testPath !== undefined ? { testPath: at(source.testPath) } : {}),
            ...(source.labels !== undefined ? { labels: at(source.labels) } : {}),
            ...(source.users !== undefined ? { users: at(source.users) } : {}),
          },
        }
      : {}),
    model: { ...model, ...(model.path !== undefined ? { path: at(model.path) } : {}) },
  };
}

/**
 * Reads and validates a scenario file (.yaml, .yml or .json). Relative data and model paths in
 * it are relative to the file's directory.
 */
export function loadScenarioFile(path: string): Scenario {
  return resolveScenarioPaths(validateScenario(readYamlFile(path), path), dirname(resolve(path)));
}

/** Names of the built-in scenarios (file names without .yaml), sorted. */
export function listBuiltinScenarios(): string[] {
  return readdirSync(BUILTIN_SCENARIO_DIR)
    .filter((file) => file.endsWith('.yaml'))
    .map((file) => basename(file, '.yaml'))
    .sort();
}

/**
 * A built-in scenario by name (e.g. 'demo'), or a path to a scenario file. A bare name that is
 * neither (no folder, no .yaml/.yml/.json) is refused with the list of built-in names.
 */
export function loadScenario(nameOrPath: string): Scenario {
  return loadScenarioFile(scenarioPath(nameOrPath));
}

/** The file of a built-in scenario name, or the path given; NOT_FOUND for a bare unknown name. */
export function scenarioPath(nameOrPath: string): string {
  const builtins = listBuiltinScenarios();
  if (builtins.includes(nameOrPath)) return join(BUILTIN_SCENARIO_DIR, `${nameOrPath}.yaml`);
  if (!/[/\\]|\.(ya?ml|json)$/i.test(nameOrPath) && !existsSync(nameOrPath)) {
    throw new FlotillaError(
      'NOT_FOUND',
      `no built-in scenario "${nameOrPath}"; the built-in scenarios are ${builtins.join(', ')} (or give a .yaml or .json file)`,
    );
  }
  return nameOrPath;
}
