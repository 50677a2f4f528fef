/**
 * The logging surface the device runtime needs. A pino logger satisfies it as is
 * (`logger.warn({ reason }, 'message')`); the default discards everything.
 */
export interface DeviceLogger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

const discard = (): void => undefined;

/** A logger that drops every line: the default when none is given. */
export const silentLogger: DeviceLogger = { debug: discard, info: discard, warn: discard, error: discard };
