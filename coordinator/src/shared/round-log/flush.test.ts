import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { keyPairFromSeed } from '@flotilla/protocol';
import { testRedisUrl, uniquePrefix } from '../../../../test-support/redis.js';
import { redisOptionsFromUrl } from '../redis-connection.js';
import { readRoundLogLines } from './stream.js';
import { openRoundLog } from './writer.js';

const key = keyPairFromSeed(new Uint8Array(32).fill(7));

describe('RoundLogWriter.flush', () => {
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-flush-'));
  afterAll(async () => {
    await redis.quit();
    rmSync(dir, { recursive: true, force: true });
  });

  it('waits for appends still in flight, then leaves the mirror equal to the stream', async () => {
    const prefix = uniquePrefix('flush');
    const filePath = join(dir, 'round-log.jsonl');
    const writer = openRoundLog({
      redis,
      prefix,
      filePath,
      signingKey: key,
      pseudonymSecret: new Uint8Array(32),
    });
    // Started and not awaited, as a round timer or a socket handler does on its own.
    const appends = Array.from({ length: 50 }, (_, i) =>
      writer.append({
        type: 'round.abandoned',
        taskId: 'flush',
        roundId: `flush:${i + 1}`,
        accepted: 0,
        minReports: 1,
        reason: 'test',
      }),
    );
    let settled = 0;
    for (const append of appends) void append.then(() => settled++);
    await writer.flush();
    expect(settled).toBe(50);
    const stream = await readRoundLogLines(redis, prefix, -1);
    // Each abandonment is a round boundary: a record and the tree head that covers it.
    expect(stream).toHaveLength(100);
    expect(readFileSync(filePath, 'utf8')).toBe(stream.map(({ line }) => `${line}\n`).join(''));
    expect(existsSync(`${filePath}.lock`)).toBe(false);
  });
});
