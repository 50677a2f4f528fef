// Event listeners, timers and pub/sub handlers run outside any caller's try: a throw there (or a
// promise they start and drop) reaches the process as an uncaught exception or an unhandled
// rejection, and Node ends the process. Coordinators and workers serve a whole fleet, so each of
// those entry points is wrapped, and the process entry installs a last-resort guard for whatever
// a dependency still lets escape.

/** The one logging call the guards make; a pino logger satisfies it. */
export interface ErrorLogger {
  error(fields: Record<string, unknown>, message: string): void;
}

/**
 * Wraps an event listener or timer callback: a synchronous throw or a rejected promise it
 * returns is logged at error level under `what`, never left to the process.
 */
export function logFailures<Args extends unknown[]>(
  logger: ErrorLogger,
  what: string,
  listener: (...args: Args) => unknown,
): (...args: Args) => void {
  return (...args: Args) => {
    const failed = (error: unknown) => logger.error({ err: error, where: what }, `${what} failed`);
    try {
      const result = listener(...args);
      if (result instanceof Promise) result.catch(failed);
    } catch (error) {
      failed(error);
    }
  };
}

/** The last-resort guard of a long-running process; see `installProcessGuard`. */
export interface ProcessGuard {
  /** Errors it caught since it was installed. */
  readonly caught: number;
  /** Removes the process listeners (when the service stops). */
  uninstall(): void;
}

/**
 * Installs `uncaughtException` and `unhandledRejection` listeners that log the error (with its
 * stack) at error level and keep the process running. Every state that matters lives in Redis
 * (rounds, acceptances, the round log), so one failed handler must not end every device's
 * session; a line from this guard is a bug to report. `onCaught` is told of each (for /metrics).
 */
export function installProcessGuard(options: {
  logger: ErrorLogger;
  onCaught?: (kind: 'uncaughtException' | 'unhandledRejection') => void;
}): ProcessGuard {
  let caught = 0;
  const report = (kind: 'uncaughtException' | 'unhandledRejection', error: unknown) => {
    caught += 1;
    try {
      options.logger.error({ err: error, kind }, `${kind} caught by the last-resort guard; still running`);
      options.onCaught?.(kind);
    } catch {
      // Logging itself failed: nothing left to tell.
    }
  };
  const onException = (error: Error) => report('uncaughtException', error);
  const onRejection = (reason: unknown) => report('unhandledRejection', reason);
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return {
    get caught() {
      return caught;
    },
    uninstall() {
      process.off('uncaughtException', onException);
      process.off('unhandledRejection', onRejection);
    },
  };
}
