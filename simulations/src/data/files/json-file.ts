import { readFileSync } from 'node:fs';
import { FlotillaError } from '@flotilla/protocol';

/** Reads and parses a JSON file; CORRUPT_FILE naming `path` when it cannot be read or is not JSON. */
export function readJsonFile(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (error) {
    throw new FlotillaError(
      'CORRUPT_FILE',
      `${path}: not JSON (${error instanceof Error ? error.message : String(error)})`,
      { cause: error },
    );
  }
}
