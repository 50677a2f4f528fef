import type { Logger } from 'pino';

/** The fields that tie a log line to a round: every round-scoped line carries them. */
export interface RoundContext {
  roundId: string;
  taskId?: string;
}

/**
 * A pino child logger whose every line carries `roundId` (and `taskId` when known), so that
 * `jq 'select(.roundId == "mnist:7")'` finds a round's whole story across server and worker logs.
 */
export function roundLogger(logger: Logger, context: RoundContext): Logger {
  return logger.child(
    context.taskId === undefined
      ? { roundId: context.roundId }
      : { roundId: context.roundId, taskId: context.taskId },
  );
}
