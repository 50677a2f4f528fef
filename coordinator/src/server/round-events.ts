import type { Logger } from 'pino';
import type { RoundLogEventOf } from '@flotilla/protocol';
import { pseudonymizeDevice, type RoundLogWriter } from '../shared/round-log/index.js';

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
>;

/** Where round events go: the signed round log when configured, else the structured log. */
export interface RoundEvents {
  append(event: CoordinatorRoundEvent): Promise<void>;
  /** Keyed pseudonym of a device id: `dev_<32 hex>`. */
  pseudonymize(deviceId: string): string;
}

/** Round events written to the pino log only (used when no round log is configured). */
export function loggingRoundEvents(logger: Logger, pseudonymSecret: Uint8Array): RoundEvents {
  return {
    append(event) {
      logger.info({ roundId: 'roundId' in event ? event.roundId : undefined, event }, event.type);
      return Promise.resolve();
    },
    pseudonymize: (deviceId) => pseudonymizeDevice(pseudonymSecret, deviceId),
  };
}

/**
 * Round events appended to the signed, hash-chained round log (and logged). An append failure is
 * logged, never thrown at a device: the acceptance is already durable in Redis.
 */
export function roundLogEvents(logger: Logger, writer: RoundLogWriter): RoundEvents {
  return {
    async append(event) {
      logger.info({ roundId: 'roundId' in event ? event.roundId : undefined, event }, event.type);
      try {
        await writer.append(event);
      } catch (error) {
        logger.error(
          { err: error, roundId: 'roundId' in event ? event.roundId : undefined, type: event.type },
          'round log append failed',
        );
      }
    },
    pseudonymize: (deviceId) => writer.pseudonymize(deviceId),
  };
}
