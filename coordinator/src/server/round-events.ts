import type { Logger } from 'pino';
import {
  FlotillaError,
  type InclusionProof,
  type RoundLogEventOf,
  type RoundLogRecord,
} from '@flotilla/protocol';
import {
  commitUpdate,
  pseudonymizeDevice,
  updateCommitmentKey,
  type RoundLogWriter,
} from '../shared/round-log/index.js';

/** The round-log events the coordinator itself writes (the worker writes the others). */
export type CoordinatorRoundEvent = RoundLogEventOf<
  | 'round.opened'
  | 'round.selected'
  | 'update.accepted'
  | 'update.refused'
  | 'update.refusals'
  | 'update.excluded'
  | 'round.closed'
  | 'round.abandoned'
  | 'rollback'
  | 'task.control'
>;

/** How a round ends in the log: built from the counts the log holds right before it. */
export interface RoundEnd {
  roundId: string;
  /** `update.accepted` of every update stored for the round (the log gets the ones it lacks). */
  accepted: Array<RoundLogEventOf<'update.accepted'>>;
  /** Refusals counted in Redis: what `build` gets without a round log. */
  refusedFallback: number;
  build(logged: { accepted: number; refused: number }): RoundLogEventOf<'round.closed' | 'round.abandoned'>;
}

/** Where round events go: the signed round log when configured, else the structured log. */
export interface RoundEvents {
  /** Appends the event; resolves with its record, or null without a round log (or when the append failed). */
  append(event: CoordinatorRoundEvent): Promise<RoundLogRecord | null>;
  /**
   * Ends a round in the log: first every accepted update the log does not hold yet (its accepting
   * process died, or has not got to it), then `round.closed` / `round.abandoned` with the counts
   * of the records before it, so the counts always add up.
   */
  endRound(end: RoundEnd): Promise<void>;
  /** Keyed pseudonym of a device id: `dev_<32 hex>`. */
  pseudonymize(deviceId: string): string;
  /** How a DP round's log names an update: its commitment (update-commitment.ts). */
  commitUpdate(roundId: string, blobDigest: string): string;
  /** The inclusion proof of record `leafIndex` against the last signed tree head; null until one covers it. */
  proveInclusion(leafIndex: number): Promise<InclusionProof | null>;
}

/** Round events written to the pino log only (used when no round log is configured). */
export function loggingRoundEvents(logger: Logger, pseudonymSecret: Uint8Array): RoundEvents {
  const commitmentKey = updateCommitmentKey(pseudonymSecret);
  return {
    append(event) {
      logger.info({ roundId: 'roundId' in event ? event.roundId : undefined, event }, event.type);
      return Promise.resolve(null);
    },
    endRound(end) {
      const event = end.build({ accepted: end.accepted.length, refused: end.refusedFallback });
      logger.info({ roundId: end.roundId, event }, event.type);
      return Promise.resolve();
    },
    pseudonymize: (deviceId) => pseudonymizeDevice(pseudonymSecret, deviceId),
    commitUpdate: (roundId, blobDigest) => commitUpdate(commitmentKey, roundId, blobDigest),
    proveInclusion: () =>
      Promise.reject(new FlotillaError('NOT_FOUND', 'this coordinator keeps no round log')),
  };
}

/**
 * Round events appended to the round log, a transparency log (and logged). An append failure is
 * logged, never thrown at a device: the acceptance is already durable in Redis.
 */
export function roundLogEvents(logger: Logger, writer: RoundLogWriter): RoundEvents {
  return {
    async append(event) {
      logger.info({ roundId: 'roundId' in event ? event.roundId : undefined, event }, event.type);
      try {
        return await writer.append(event);
      } catch (error) {
        logger.error(
          { err: error, roundId: 'roundId' in event ? event.roundId : undefined, type: event.type },
          'round log append failed',
        );
        return null;
      }
    },
    async endRound(end) {
      try {
        const logged = await writer.loggedAccepted(end.roundId);
        // Appending one the log already holds is a no-op (the writer keeps one per device).
        for (const event of end.accepted) if (!logged.has(event.device)) await writer.append(event);
        const record = await writer.appendCounted(end.roundId, (counts) => end.build(counts));
        logger.info({ roundId: end.roundId, event: record.event }, record.event.type);
      } catch (error) {
        logger.error({ err: error, roundId: end.roundId }, 'round log append failed');
      }
    },
    pseudonymize: (deviceId) => writer.pseudonymize(deviceId),
    commitUpdate: (roundId, blobDigest) => writer.commitUpdate(roundId, blobDigest),
    proveInclusion: (leafIndex) => writer.proveInclusion(leafIndex),
  };
}
