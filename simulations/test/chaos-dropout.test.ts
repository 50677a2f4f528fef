import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoundPlan } from '@flotilla/protocol';
import { redisOptionsFromUrl } from '@flotilla/coordinator/shared';
import { createCoordinator, type Coordinator } from '@flotilla/coordinator/server';
import type { AggregationWorker } from '@flotilla/coordinator/worker';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import {
  FastTrainer,
  newKeys,
  OPERATOR,
  registerDevice,
  registerTask,
  startChaosDevice,
  startChaosWorker,
  stopDevicesAndWorker,
  waitUntil,
} from './support/index.js';
import type { ChaosDevice, DeviceRecord } from './support/index.js';

const TASK = 'chaos-dropout';
const DEVICES = 10;
/** Devices that vanish after selection: round 1 loses 30%, round 2 60%, round 3 none. */
const DROPS: Record<number, number> = { 1: 3, 2: 6, 3: 0 };

// Selected devices that go silent (connection gone, no update, no skip). With quorum the round
// commits at its deadline; without, it is abandoned and the next round opens.
describe('chaos: dropouts among selected devices', () => {
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  let coordinator: Coordinator | null = null;
  let worker: AggregationWorker | null = null;
  const live = new Map<string, ChaosDevice>();
  const stateDir = mkdtempSync(join(tmpdir(), 'flotilla-chaos-dropout-'));

  afterAll(async () => {
    await stopDevicesAndWorker(live.values(), worker);
    await coordinator?.close();
    rmSync(stateDir, { recursive: true, force: true });
    redis.disconnect();
  });

  // The fleet starts in beforeAll; the `it`s follow its three rounds, in order.
  let started = 0;
  const finalState = (roundId: string) =>
    waitUntil(
      async () => {
        const round = await coordinator?.rounds.get(roundId);
        return round && ['COMMITTED', 'REJECTED', 'ABANDONED'].includes(round.state) ? round : null;
      },
      30_000,
      `${roundId} decided`,
    );
  const accepted: number[] = [];

  beforeAll(async () => {
    started = Date.now();
    const prefix = uniquePrefix('chaos-dropout');
    const c = await createCoordinator({
      redisUrl: testRedisUrl(),
      prefix,
      stateDir,
      operatorToken: OPERATOR,
    });
    coordinator = c;
    const signingKey = c.coordinatorKey;
    ({ worker } = await startChaosWorker({
      redisUrl: testRedisUrl(),
      redis: c.redis,
      prefix,
      stateDir,
      signingKey,
    }));
    await registerTask(c, TASK, {
      goalCount: DEVICES,
      minReports: 6,
      reportingDeadlineMs: 3000,
      maxRounds: 3,
    });

    const records = new Map<string, DeviceRecord>();
    const keysOf = new Map(Array.from({ length: DEVICES }, (_, i) => [`drop-dev-${i}`, newKeys()]));
    // The last DROPS[round] devices vanish once selected, and come back once that round is over.
    const start = async (i: number): Promise<void> => {
      const id = `drop-dev-${i}`;
      const keys = keysOf.get(id);
      if (!keys) throw new Error(id);
      const trainer = new FastTrainer({
        index: i,
        dropsOut: (plan: RoundPlan) => i >= DEVICES - (DROPS[plan.roundNumber] ?? 0),
        onDrop: (plan: RoundPlan) => {
          live.get(id)?.device.stop();
          live.delete(id);
          void waitUntil(
            async () => (await c.rounds.get(plan.roundId))?.state !== 'REPORTING',
            20_000,
            `${plan.roundId} over`,
          ).then(() => start(i));
        },
      });
      const record = records.get(id);
      const device = await startChaosDevice({
        url: c.url,
        id,
        keys,
        taskId: TASK,
        trainer,
        ...(record ? { record } : {}),
      });
      records.set(id, device.record);
      live.set(id, device);
    };
    for (let i = 0; i < DEVICES; i++) {
      const keys = keysOf.get(`drop-dev-${i}`);
      if (keys) await registerDevice(c, `drop-dev-${i}`, keys);
      await start(i);
    }
  });

  it('commits round 1 at its deadline with 30% of the selected devices gone', async () => {
    const r1 = await finalState(`${TASK}:1`);
    expect(r1.state).toBe('COMMITTED');
    expect(r1.selectedCount).toBe(DEVICES);
    expect(r1.acceptedCount).toBe(DEVICES - 3);
    accepted.push(r1.acceptedCount);
  });

  it('abandons round 2 with 60% gone: quorum missed', async () => {
    const r2 = await finalState(`${TASK}:2`);
    expect(r2.state).toBe('ABANDONED');
    expect(r2.acceptedCount).toBe(DEVICES - 6);
    expect(r2.reason).toBe(`quorum missed: ${DEVICES - 6} of 6 updates`);
    accepted.push(r2.acceptedCount);
  });

  it('opens the next round at once, and with everyone back it commits', async () => {
    // The next round opened at once, and with everyone back it commits.
    const r3 = await finalState(`${TASK}:3`);
    expect(r3.state).toBe('COMMITTED');
    expect(r3.acceptedCount).toBe(DEVICES);
    expect(await coordinator?.adapters.latestVersion(TASK)).toBe(2);
    console.info(
      `[chaos] dropout: round 1 COMMITTED ${accepted[0]}/${DEVICES}, round 2 ABANDONED ` +
        `${accepted[1]}/${DEVICES} (quorum 6), round 3 COMMITTED ${r3.acceptedCount}/${DEVICES}, ` +
        `in ${Date.now() - started} ms`,
    );
  });
});
