import type { RoundLogRecord } from '@flotilla/protocol';
import type { RoundLogWriter } from '../../src/shared/round-log/index.js';
import { roundOpened } from './round-log-events.js';

/**
 * Leaves the round log as a writer killed between its appends and its tree head does: round
 * `demo:1` opened (signed), then `count` `update.refused` records that no head covers. They are
 * queued behind an append that fails, the writer's last, which would have signed them. `writer`
 * needs a long `treeHeadIntervalMs`, so that only its queue running dry signs a head.
 */
export async function leaveUnsignedTail(writer: RoundLogWriter, count: number): Promise<RoundLogRecord[]> {
  await writer.append(roundOpened(1));
  const refused = Array.from({ length: count }, (_, i) =>
    writer.append({
      type: 'update.refused',
      taskId: 'demo',
      roundId: 'demo:1',
      device: writer.pseudonymize(`device-${i}`),
      reason: 'NOT_SELECTED',
      message: 'device not selected for this round',
      blobDigest: (i + 1).toString(16).padStart(64, '0'),
      norm: null,
      clipBound: 1,
      clipped: false,
      bytes: 100,
    }),
  );
  const killed = writer.appendCounted('demo:1', () => {
    throw new Error('the writer died before this append');
  });
  const records = await Promise.all(refused);
  await killed.catch(() => undefined);
  return records;
}
