import type { Redis } from 'ioredis';
import {
  isTreeHeadLine,
  toBase64,
  verifyRoundLog,
  type RoundLogLine,
  type RoundLogRecord,
  type VerifyRoundLogOptions,
  type VerifyRoundLogResult,
} from '@flotilla/protocol';
import type { Coordinator } from '../../src/server/coordinator.js';
import { readRoundLog, readRoundLogEntries } from '../../src/shared/round-log/index.js';
import { PATIENCE_MS } from '../../../test-support/patience.js';
import { waitFor } from './wait-for.js';

/** The coordinator's round log (Redis stream) once `ready` holds for it; times out naming `what`. */
export function roundLogWhen(
  coordinator: Coordinator,
  what: string,
  ready: (records: RoundLogRecord[]) => boolean,
  timeoutMs = PATIENCE_MS,
): Promise<RoundLogRecord[]> {
  return waitFor(
    async () => {
      const records = await readRoundLog(coordinator.redis, coordinator.prefix);
      return ready(records) ? records : null;
    },
    timeoutMs,
    what,
  );
}

/**
 * The round log's lines (records and tree heads) once its last record is covered by a tree head.
 * A writer that still has appends queued signs the head with the last of them, so a log read
 * mid-way can end in a few unsigned records; an honest, idle log never does.
 */
export function readSignedLog(redis: Redis, prefix: string): Promise<RoundLogLine[]> {
  return waitFor(
    async () => {
      const lines = await readRoundLogEntries(redis, prefix);
      const last = lines.at(-1);
      return last === undefined || isTreeHeadLine(last) ? lines : null;
    },
    PATIENCE_MS,
    'the round log to end in a signed tree head',
  );
}

/** Verifies the stored round log (records and tree heads). */
export async function verifyStoredLog(
  redis: Redis,
  prefix: string,
  options: VerifyRoundLogOptions,
): Promise<VerifyRoundLogResult> {
  return verifyRoundLog(await readSignedLog(redis, prefix), options);
}

/** verifyRoundLog's verdict on the coordinator's stored round log, against the coordinator's key. */
export function roundLogVerdict(coordinator: Coordinator): Promise<VerifyRoundLogResult> {
  return verifyStoredLog(coordinator.redis, coordinator.prefix, {
    trustedKey: toBase64(coordinator.coordinatorKey.publicKey),
  });
}
