import { toBase64, verifyRoundLog, type RoundLogRecord } from '@flotilla/protocol';
import type { Coordinator } from '../../src/server/coordinator.js';
import { readRoundLog } from '../../src/shared/round-log/index.js';
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

/** verifyRoundLog's verdict on `records` against the coordinator's key. */
export function roundLogVerdict(coordinator: Coordinator, records: RoundLogRecord[]) {
  return verifyRoundLog(records, { trustedKey: toBase64(coordinator.coordinatorKey.publicKey) });
}
