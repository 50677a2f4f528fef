import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { keyPairFromSeed } from '@flotilla/protocol';
import { FlotillaMetrics, RoundLogFollower } from '../src/server/metrics/index.js';
import {
  mirrorIdOf,
  openRoundLog,
  roundLogKeys,
  roundLogStorage,
  syncMirror,
} from '../src/shared/round-log/index.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import { parsePrometheusText, sampleValue } from './metrics-text-parser.js';
import { roundAbandonedInSelection } from './support/index.js';

// The dashboard's follower and the /metrics gauges on a log whose Redis stream was trimmed.
describe('a trimmed round log, as the coordinator follows and reports it', () => {
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-trimmed-follower-'));
  afterAll(() => {
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('follows every line through the mirror, and shows a stopped mirror in the gauges', async () => {
    const prefix = uniquePrefix('trimmed-follower');
    const filePath = join(dir, 'round-log.jsonl');
    const stalled = join(dir, 'stalled.jsonl');
    const writer = openRoundLog({
      redis,
      prefix,
      filePath,
      signingKey: keyPairFromSeed(new Uint8Array(32).fill(2)),
      pseudonymSecret: new Uint8Array(32),
      keepLines: 15,
      onLaggingMirror: () => undefined,
    });
    const abandon = (n: number) => writer.append(roundAbandonedInSelection(n));
    for (let n = 1; n <= 5; n++) await abandon(n);
    await syncMirror({ redis, prefix, filePath: stalled });
    for (let n = 6; n <= 60; n++) await abandon(n);
    await writer.flush();
    const lines = readFileSync(filePath, 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(120);
    // The stopped mirror (10 lines) holds the stream from its line 10 on.
    expect(await redis.xlen(roundLogKeys(prefix).stream)).toBe(110);

    const follower = new RoundLogFollower({ redis, prefix, verifyEveryMs: 0, mirrorPath: filePath });
    await follower.refresh();
    expect(follower.headSeq).toBe(119);
    expect(follower.summary().rounds).toHaveLength(60);
    expect(await follower.chainStatus()).toMatchObject({ records: 120, verified: { ok: true } });

    const metrics = new FlotillaMetrics({
      processMetrics: false,
      sources: { roundLogStorage: () => roundLogStorage(redis, prefix) },
    });
    const families = parsePrometheusText(await metrics.text());
    expect(sampleValue(families, 'flotilla_round_log_stream_lines')).toBe(110);
    expect(
      sampleValue(families, 'flotilla_round_log_mirror_lag_lines', { mirror: mirrorIdOf(stalled) }),
    ).toBe(110);
    expect(
      sampleValue(families, 'flotilla_round_log_mirror_lag_lines', { mirror: mirrorIdOf(filePath) }),
    ).toBe(0);
  });
});
