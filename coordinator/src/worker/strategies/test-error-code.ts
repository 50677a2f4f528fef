import { FlotillaError } from '@flotilla/protocol';

/** For tests: the FlotillaError code `run` throws, 'not a FlotillaError' for another throw, undefined when it returns. */
export function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return FlotillaError.is(error) ? error.code : 'not a FlotillaError';
  }
  return undefined;
}
