import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64, verifyRoundLog } from '@flotilla/protocol';
import {
  auditVerifyCommand,
  defaultRoundLogPath,
  readRoundLog,
  redisOptionsFromUrl,
  startEmbeddedRedis,
  type EmbeddedRedis,
} from '@flotilla/coordinator/shared';
import { createCoordinator, type Coordinator } from '@flotilla/coordinator/server';
import type { AggregationWorker } from '@flotilla/coordinator/worker';
import {
  FastTrainer,
  OPERATOR,
  readSignedLog,
  registerDevice,
  registerTask,
  startChaosDevice,
  startChaosWorker,
  stopDevicesAndWorker,
  waitUntil,
} from './support/index.js';
import type { ChaosDevice } from './support/index.js';

const TASK = 'chaos-redis';
const DEVICES = 4;

// Redis (AOF on, appendfsync everysec) is killed with SIGKILL in the middle of round 2 and
// restarted on the same data directory and socket. Promoted adapters, the round in flight and the
// signed round log come back; coordinator, worker and devices carry on without a restart.
describe('chaos: Redis SIGKILL and restart', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-chaos-redis-'));
  const sockDir = mkdtempSync(join(tmpdir(), 'flr-'));
  const servers: EmbeddedRedis[] = [];
  const devices: ChaosDevice[] = [];
  let coordinator: Coordinator | null = null;
  let worker: AggregationWorker | null = null;
  let probe: Redis | null = null;

  afterAll(async () => {
    await stopDevicesAndWorker(devices, worker);
    await coordinator?.close();
    probe?.disconnect();
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(sockDir, { recursive: true, force: true });
  });

  // Set in order by the steps below; each step is one behaviour of the restart.
  const started = Date.now();
  const redisOptions = { dataDir: join(dir, 'redis'), socketPath: join(sockDir, 'redis.sock') };
  const stateDir = join(dir, 'state');
  const prefix = 'chaos-redis';
  let c: Coordinator;
  let p: Redis;
  let first: EmbeddedRedis;
  let roundLog: Awaited<ReturnType<typeof startChaosWorker>>['roundLog'];
  let release: () => void = () => undefined;
  let manifestBefore: unknown;
  let logBefore: Awaited<ReturnType<typeof readRoundLog>>;
  let outageMs = 0;
  const stateOf = (roundId: string) => p.hget(`${prefix}:round:${roundId}`, 'state');
  const trustedKey = () => toBase64(c.coordinatorKey.publicKey);

  beforeAll(async () => {
    first = await startEmbeddedRedis(redisOptions);
    servers.push(first);
    c = await createCoordinator({ redisUrl: first.url, prefix, stateDir, operatorToken: OPERATOR });
    coordinator = c;
    const aggregation = await startChaosWorker({
      redisUrl: first.url,
      redis: c.redis,
      prefix,
      stateDir,
      signingKey: c.coordinatorKey,
    });
    worker = aggregation.worker;
    roundLog = aggregation.roundLog;
    await registerTask(c, TASK, {
      goalCount: DEVICES,
      minReports: 3,
      reportingDeadlineMs: 30_000,
      maxRounds: 3,
    });
    const restarted = new Promise<void>((resolve) => (release = resolve));
    for (let i = 0; i < DEVICES; i++) {
      const id = `redis-dev-${i}`;
      const keys = await registerDevice(c, id);
      const trainer = new FastTrainer({
        index: i,
        // Round 2: one update goes in before the crash, the others wait for the restart.
        before: (plan) => (plan.roundNumber === 2 && i > 0 ? restarted : Promise.resolve()),
      });
      devices.push(await startChaosDevice({ url: c.url, id, keys, taskId: TASK, trainer }));
    }
    probe = new Redis(redisOptionsFromUrl(first.url));
    probe.on('error', () => undefined); // expected while Redis is down
    p = probe;
  });

  it('commits round 1 and acks one update of round 2 before the crash', async () => {
    await waitUntil(async () => (await stateOf(`${TASK}:1`)) === 'COMMITTED', 30_000, 'round 1');
    await waitUntil(async () => (await p.hlen(`${prefix}:round:${TASK}:2:updates`)) === 1, 20_000, 'r2 ack');
    manifestBefore = await c.adapters.getManifest(TASK, 1);
    logBefore = await readRoundLog(p, prefix);
  });

  it('comes back on the same data directory and socket after SIGKILL', async () => {
    // appendfsync everysec: wait past one fsync period, then crash Redis hard.
    await new Promise((r) => setTimeout(r, 1500));
    process.kill(first.pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    const downAt = Date.now();
    const second = await startEmbeddedRedis(redisOptions);
    servers.push(second);
    expect(second.url).toBe(first.url);
    outageMs = Date.now() - downAt + 500;
  });

  it('keeps the promoted adapter', async () => {
    expect(await c.adapters.latestVersion(TASK)).toBe(1);
    expect(await c.adapters.getManifest(TASK, 1)).toEqual(manifestBefore);
  });

  it('keeps the round in flight with the update it had acked', async () => {
    expect(await stateOf(`${TASK}:2`)).toBe('REPORTING');
    expect(await p.hkeys(`${prefix}:round:${TASK}:2:updates`)).toEqual(['redis-dev-0']);
  });

  it('keeps the signed round log as it was, and it verifies', async () => {
    const logAfter = await readRoundLog(p, prefix);
    expect(logAfter.slice(0, logBefore.length)).toEqual(logBefore);
    expect(
      (await verifyRoundLog(await readSignedLog(p, prefix), { trustedKey: trustedKey() })).problems,
    ).toEqual([]);
  });

  it('commits rounds 2 and 3 with the same coordinator, worker and devices, refusing nothing', async () => {
    release();
    await waitUntil(async () => (await stateOf(`${TASK}:3`)) === 'COMMITTED', 45_000, 'round 3');
    expect(await stateOf(`${TASK}:2`)).toBe('COMMITTED');
    expect(await c.adapters.latestVersion(TASK)).toBe(3);
    for (const d of devices) expect(d.record.refused).toEqual([]);
  });

  it('leaves a log with three promotions that verifies, in Redis and as the file audit verify reads', async () => {
    const records = await readRoundLog(p, prefix);
    const lines = await readSignedLog(p, prefix);
    const verdict = await verifyRoundLog(lines, { trustedKey: trustedKey() });
    expect(verdict.problems).toEqual([]);
    expect(records.filter((r) => r.event.type === 'promotion')).toHaveLength(3);
    await roundLog.syncMirror();
    const audit = await auditVerifyCommand({
      file: defaultRoundLogPath(stateDir),
      json: true,
      trustedKey: trustedKey(),
    });
    expect(JSON.parse(audit.output)).toMatchObject({ ok: true, records: lines.length });
    expect(audit.exitCode).toBe(0);
    console.info(
      `[chaos] redis SIGKILL: outage ${outageMs} ms, ${logBefore.length} log records kept, ` +
        `${records.length} after rounds 2-3, audit verify ok, in ${Date.now() - started} ms`,
    );
  });
});
