import { FlotillaError } from '@flotilla/protocol';
import { ConfigError } from './config.js';

import { EXIT } from './exit-codes.js';

export { EXIT };

/**
 * Prints data as JSON (`--json`, values as they are on the wire: times in epoch ms) or as aligned
 * `key  value` lines for people, times (`…At` fields) as ISO 8601 dates.
 */
export function printData(data: Record<string, unknown>, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    return;
  }
  const width = Math.max(...Object.keys(data).map((k) => k.length));
  for (const [key, value] of Object.entries(data)) {
    const shown = isoTimes(key, value);
    const text = typeof shown === 'string' ? shown : JSON.stringify(shown, isoTimes);
    process.stdout.write(`${key.padEnd(width)}  ${text}\n`);
  }
}

/** A JSON replacer: an epoch-ms number in a field named `…At` becomes its ISO 8601 date. */
export function isoTimes(key: string, value: unknown): unknown {
  return /At$/.test(key) && typeof value === 'number' && Number.isInteger(value) && value > 0
    ? new Date(value).toISOString()
    : value;
}

/**
 * Runs a command body, mapping failures to a one-line message and an exit code: configuration
 * and input errors (a bad value, an unknown task or file: BAD_REQUEST, NOT_FOUND) exit 2,
 * everything else 1. Stacks are printed only with FLOTILLA_DEBUG=1.
 */
export async function runCommand(body: () => Promise<number | void> | number | void): Promise<void> {
  try {
    const code = await body();
    process.exitCode = typeof code === 'number' ? code : EXIT.ok;
  } catch (error) {
    const usage =
      error instanceof ConfigError ||
      (error instanceof FlotillaError && (error.code === 'BAD_REQUEST' || error.code === 'NOT_FOUND'));
    const label = error instanceof FlotillaError ? `${error.code}: ` : '';
    process.stderr.write(`flotilla: ${label}${error instanceof Error ? error.message : String(error)}\n`);
    if (process.env.FLOTILLA_DEBUG === '1' && error instanceof Error)
      process.stderr.write(`${error.stack ?? ''}\n`);
    process.exitCode = usage ? EXIT.usage : EXIT.failed;
  }
}

/** Parses a numeric option, naming the option and what it expects in the error. */
export function parseNumberOption(
  name: string,
  raw: string,
  check: (n: number) => boolean = Number.isFinite,
  expected = 'a number',
): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || !check(value)) {
    throw new ConfigError(`--${name}: expected ${expected}, got "${raw}"`);
  }
  return value;
}
