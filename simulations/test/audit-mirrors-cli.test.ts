import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPairFromSeed } from '@flotilla/protocol';
import { defaultRoundLogPath, mirrorIdOf, redisOptionsFromUrl } from '@flotilla/coordinator/shared';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import { flotilla, openStateDirRoundLog } from './support/index.js';

// `flotilla audit export` and `flotilla audit mirrors` on a round log whose Redis stream was trimmed.
const dir = mkdtempSync(join(tmpdir(), 'flotilla-audit-mirrors-'));
const stateDir = join(dir, 'state');
const mirror = defaultRoundLogPath(stateDir);
const prefix = uniquePrefix('audit-mirrors');
const env = { REDIS_URL: testRedisUrl(), FLOTILLA_STATE_DIR: stateDir };
const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));

beforeAll(async () => {
  const writer = await openStateDirRoundLog({
    redis,
    prefix,
    stateDir,
    signingKey: keyPairFromSeed(new Uint8Array(32).fill(4)),
    keepLines: 10,
  });
  for (let n = 1; n <= 30; n++)
    await writer.append({
      type: 'round.abandoned',
      taskId: 'demo',
      roundId: `demo:${n}`,
      accepted: 0,
      minReports: 1,
      reason: 'selection timeout: 0 of 2 devices checked in',
    });
  await writer.flush();
});
afterAll(() => {
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe('flotilla audit on a trimmed round log', () => {
  it('export writes the whole log, the trimmed lines taken from the state directory mirror', async () => {
    expect(await redis.xlen(`${prefix}:roundlog:stream`)).toBe(10);
    const out = join(dir, 'export.jsonl');
    const exported = await flotilla(['audit', 'export', '--prefix', prefix, '--out', out], env);
    expect(exported).toMatchObject({ code: 0 });
    expect(exported.stdout).toContain('exported 60 round-log lines');
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(mirror, 'utf8'));
    // Elsewhere, with no mirror: exit 1 naming the lines and the mirror that holds them.
    const elsewhere = await flotilla(['audit', 'export', '--prefix', prefix, '--out', out], {
      ...env,
      FLOTILLA_STATE_DIR: join(dir, 'empty'),
    });
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stdout).toContain('lines 0-49 were trimmed from Redis');
    expect(elsewhere.stdout).toContain(mirrorIdOf(mirror));
  });

  it('mirrors lists each mirror and removes a dead one', async () => {
    const listed = await flotilla(['audit', 'mirrors', '--prefix', prefix], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(
      `round log "${prefix}": 60 lines; the Redis stream holds 10 (from line 50)`,
    );
    expect(listed.stdout).toContain(`${mirrorIdOf(mirror)}  through line 59 (0 behind)`);
    const removed = await flotilla(
      ['audit', 'mirrors', '--prefix', prefix, '--remove', mirrorIdOf(mirror)],
      env,
    );
    expect(removed.code).toBe(0);
    const again = await flotilla(
      ['audit', 'mirrors', '--prefix', prefix, '--remove', mirrorIdOf(mirror)],
      env,
    );
    expect(again.code).toBe(1);
    expect((await flotilla(['audit', 'mirrors', '--prefix', prefix], env)).stdout).toContain(
      'no mirror registered: nothing is trimmed',
    );
  });
});
