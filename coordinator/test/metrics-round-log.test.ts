import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaMetrics, RoundLogFollower } from '../src/server/metrics/index.js';
import {
  openRoundLog,
  roundLogKeys,
  streamIdOf,
  type RoundLogWriter,
} from '../src/shared/round-log/index.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import { parsePrometheusText, sampleValue } from './metrics-text-parser.js';

const digest = (c: string) => c.repeat(64);

describe('RoundLogFollower: ε per task and chain status from the signed round log', () => {
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-follower-'));
  afterAll(() => {
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  // One log grows across the `it`s, in order: empty, two rounds, then a tampered copy.
  const prefix = uniquePrefix('follower');
  let writer: RoundLogWriter;
  let follower: RoundLogFollower;
  beforeAll(async () => {
    writer = openRoundLog({
      redis,
      prefix,
      filePath: join(dir, 'round-log.jsonl'),
      signingKey: nacl.sign.keyPair(),
      pseudonymSecret: new Uint8Array(32).fill(7),
    });
    follower = new RoundLogFollower({ redis, prefix, verifyEveryMs: 0 });
    await follower.refresh();
  });
  async function round(n: number, epsilon: number) {
    const devices = [writer.pseudonymize('a'), writer.pseudonymize('b')];
    const roundId = `dp-task:${n}`;
    const base = { taskId: 'dp-task', roundId };
    await writer.append({
      type: 'round.opened',
      ...base,
      goalCount: 2,
      minReports: 2,
      clipNorm: 1,
      parentVersion: 0,
      deadline: Date.now() + 60_000,
      dp: { epsilonBudget: 10, delta: 1e-5, noiseMultiplier: 1 },
    });
    await writer.append({ type: 'round.selected', ...base, devices, eligible: 2 });
    for (const [i, device] of devices.entries())
      await writer.append({
        type: 'update.accepted',
        ...base,
        device,
        // As a DP round logs it: no per-update values (docs/privacy.md).
        blobDigest: digest(String(i + 1)),
        norm: null,
        clipBound: 1,
        clipped: null,
        bytes: null,
        numExamples: null,
      });
    await writer.append({
      type: 'round.closed',
      ...base,
      accepted: 2,
      refused: 0,
      minReports: 2,
      reason: 'goal-reached',
    });
    await writer.append({
      type: 'aggregation',
      ...base,
      strategy: 'fedavg',
      strategyOptions: {},
      loraRule: 'bias-only',
      participants: devices.map((device, i) => ({ device, blobDigest: digest(String(i + 1)), weight: 1 })),
      clipNorm: 1,
      noiseMultiplier: 1,
      epsilon,
      delta: 1e-5,
      aggregateDigest: digest('f'),
      deltasRetainedUntil: null,
    });
    await writer.append({ type: 'rejection', ...base, reasons: ['drift'] });
  }

  it('reads an empty log as no ε and no records', async () => {
    expect(follower.epsilonByTask().size).toBe(0);
    expect((await follower.chainStatus()).records).toBe(0);
  });

  it('reads incrementally and reports the latest ε of each task, not a sum', async () => {
    await round(1, 0.8);
    await follower.refresh();
    expect(follower.epsilonByTask().get('dp-task')).toBe(0.8);
    await round(2, 1.3);
    await follower.refresh();
    // Every append here finds the writer idle, so each record comes with its own tree head.
    expect(follower.headSeq).toBe(27);
    // The accountant's running total: the later record wins, values are not summed.
    expect(follower.epsilonByTask().get('dp-task')).toBe(1.3);
  });

  it('verifies the chain through the last tree head it read', async () => {
    const chain = await follower.chainStatus();
    expect(chain.verified?.problems).toEqual([]);
    expect(chain).toMatchObject({
      records: 28,
      head: { seq: 27, treeSize: 14 },
      verified: { ok: true, through: 27, firstBad: null },
    });
  });

  it('serves the ε spent as a /metrics gauge', async () => {
    const metrics = new FlotillaMetrics({
      processMetrics: false,
      sources: { epsilonSpent: () => follower.refresh().then(() => follower.epsilonByTask()) },
    });
    const families = parsePrometheusText(await metrics.text());
    expect(sampleValue(families, 'flotilla_privacy_epsilon_spent', { task: 'dp-task' })).toBe(1.3);
  });

  it('notices a rewritten record: a fresh follower finds the root broken at its line', async () => {
    // Rewrite the clip bound of line 4 (the first update.accepted) in the stream (rebuilt in
    // order, since stream ids only grow): a fresh follower finds its head's root broken at line 4.
    const key = roundLogKeys(prefix).stream;
    const entries = await redis.xrange(key, '-', '+');
    await redis.del(key);
    for (const [id, fields] of entries) {
      const json = fields[fields.indexOf('record') + 1] ?? '';
      const value = id === streamIdOf(4) ? json.replace('"clipBound":1', '"clipBound":0.5') : json;
      if (id === streamIdOf(4)) expect(value).not.toBe(json);
      await redis.xadd(key, id, 'record', value);
    }
    const auditor = new RoundLogFollower({ redis, prefix, verifyEveryMs: 0 });
    await auditor.refresh();
    const broken = await auditor.chainStatus();
    expect(broken.verified).toMatchObject({ ok: false, firstBad: 4, through: 27 });
    expect(broken.verified?.problems[0]?.code).toBe('ROOT');
  });
});
