import { UnrecoverableError } from 'bullmq';
import { FlotillaError, type ErrorCode } from '@flotilla/protocol';

/**
 * Error codes that say a job's input is wrong (a malformed delta, a task the strategy cannot run,
 * an unknown task): another attempt cannot fix it, so the job fails at once (BullMQ's
 * UnrecoverableError) and its round is rejected with the reason. Everything else, INTERNAL
 * included, is retried up to the job's attempts: a fault may pass, and a bug is not the round's.
 */
const NEVER_RETRY: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'BAD_REQUEST',
  'NOT_FOUND',
  'CORRUPT_FILE',
  'SHAPE_MISMATCH',
]);

/** True for a FlotillaError whose code no retry can fix. */
export function isNeverRetried(error: unknown): error is FlotillaError {
  return error instanceof FlotillaError && NEVER_RETRY.has(error.code);
}

/** BullMQ's error that fails a job without further attempts, naming the code and message. */
export function unrecoverable(error: FlotillaError): UnrecoverableError {
  return new UnrecoverableError(`${error.code}: ${error.message}`);
}
