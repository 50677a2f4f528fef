import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { keyPairFromSeed, toBase64, verifyRoundLog, type RoundLogEventOf } from '@flotilla/protocol';
import { uniquePrefix } from '../../../../test-support/redis.js';
import { testRedisConnections } from '../../../test/support/index.js';
import { readRoundLog, readRoundLogEntries } from './stream.js';
import { openRoundLog } from './writer.js';

// The writer keeps, atomically with each append, what the log holds for each round: so a round's
// end record can count exactly the records before it, whichever process appended them, and an
// acceptance logged by the round's closer is never logged twice.

const key = keyPairFromSeed(new Uint8Array(32).fill(8));
const dir = mkdtempSync(join(tmpdir(), 'flotilla-round-counts-'));
const connect = testRedisConnections();
function writer(prefix: string) {
  return openRoundLog({
    redis: connect(),
    prefix,
    filePath: join(dir, `${prefix}.jsonl`),
    signingKey: key,
    pseudonymSecret: new Uint8Array(32).fill(1),
  });
}
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const ROUND = { taskId: 'counts', roundId: 'counts:1' };
const dev = (n: number) => `dev_${n.toString(16).padStart(32, '0')}`;
const digest = (n: number) => n.toString(16).padStart(64, '0');

function accepted(n: number): RoundLogEventOf<'update.accepted'> {
  return {
    type: 'update.accepted',
    ...ROUND,
    device: dev(n),
    blobDigest: digest(n),
    norm: 0.5,
    clipBound: 1,
    clipped: false,
    bytes: 64,
    numExamples: 10,
  };
}

function refused(n: number): RoundLogEventOf<'update.refused'> {
  return {
    type: 'update.refused',
    ...ROUND,
    device: dev(100 + n),
    reason: 'NOT_SELECTED',
    message: 'not selected',
    blobDigest: null,
    norm: null,
    clipBound: null,
    clipped: null,
    bytes: null,
  };
}

describe('round counts kept by the round-log writer', () => {
  it('appends an acceptance once per device: a second append resolves to the record in the log', async () => {
    const prefix = uniquePrefix('rlog-once');
    const [a, b] = [writer(prefix), writer(prefix)];
    const first = await a.append(accepted(1));
    const again = await b.append({ ...accepted(1), norm: 0.25 });
    expect(again).toEqual(first);
    await b.append(accepted(2));
    expect(await a.loggedAccepted(ROUND.roundId)).toEqual(new Set([dev(1), dev(2)]));
    expect((await readRoundLog(connect(), prefix)).map((r) => r.event.type)).toEqual([
      'update.accepted',
      'update.accepted',
    ]);
  });

  it('counts exactly the records before the counted one while another process keeps appending', async () => {
    const prefix = uniquePrefix('rlog-counted');
    const [closer, other] = [writer(prefix), writer(prefix)];
    const noise = Array.from({ length: 60 }, (_, i) =>
      i % 3 === 0 ? other.append(accepted(i)) : other.append(refused(i)),
    );
    await new Promise((resolve) => setTimeout(resolve, 5));
    const end = await closer.appendCounted(ROUND.roundId, (logged) => ({
      type: 'round.abandoned',
      ...ROUND,
      accepted: logged.accepted,
      minReports: 1,
      reason: `${logged.refused} refused`,
    }));
    await Promise.all(noise);
    const records = await readRoundLog(connect(), prefix);
    const before = records.slice(0, end.leafIndex);
    const count = (type: string) => before.filter((r) => r.event.type === type).length;
    expect(end.event).toMatchObject({
      accepted: count('update.accepted'),
      reason: `${count('update.refused')} refused`,
    });
    expect(records).toHaveLength(61);
    const lines = await readRoundLogEntries(connect(), prefix);
    const verdict = await verifyRoundLog(lines, { trustedKey: toBase64(key.publicKey) });
    expect(verdict.records).toBe(lines.length);
    expect(verdict.problems.map((p) => p.code)).not.toContain('ROOT');
  });
});
