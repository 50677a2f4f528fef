// FlotillaDevice on each socket.io transport choice against a coordinator process: its default
// (socket.io's own: long-polling, then the upgrade to WebSocket), polling only, and WebSocket
// only. Each completes a round that a worker promotes, and catches up to the new version.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisKeys, redisOptionsFromUrl } from '@flotilla/coordinator/shared';
import type { AggregationWorker } from '@flotilla/coordinator/worker';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import {
  coordinatorProcessArgs,
  FastTrainer,
  registerDevice,
  registerTask,
  startChaosDevice,
  startChildCoordinator,
  startRoundLogWorker,
  stopDevicesAndWorker,
  waitUntil,
} from './support/index.js';
import type { ChaosDevice, ChildCoordinator } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

const TASK = 'transports';

describe('FlotillaDevice transports', () => {
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  const stateDir = mkdtempSync(join(tmpdir(), 'flotilla-transports-'));
  const devices: ChaosDevice[] = [];
  let coordinator: ChildCoordinator | null = null;
  let worker: AggregationWorker | null = null;

  afterAll(async () => {
    await stopDevicesAndWorker(devices, worker);
    await coordinator?.kill();
    rmSync(stateDir, { recursive: true, force: true });
    redis.disconnect();
  });

  it('default options (polling, then WebSocket), polling only and WebSocket only each complete a round', async () => {
    const prefix = uniquePrefix('transports');
    coordinator = await startChildCoordinator(await coordinatorProcessArgs(prefix, stateDir));
    const { url } = coordinator;
    await registerTask({ url }, TASK, { goalCount: 3, minReports: 3, maxRounds: 1 });
    worker = await startRoundLogWorker({ redis, prefix, stateDir });

    const choices: Array<Array<'polling' | 'websocket'> | undefined> = [
      undefined,
      ['polling'],
      ['websocket'],
    ];
    for (const [index, transports] of choices.entries()) {
      const id = `transport-${index}`;
      const keys = await registerDevice({ url }, id);
      devices.push(
        await startChaosDevice({
          url,
          id,
          keys,
          taskId: TASK,
          trainer: new FastTrainer({ index }),
          ...(transports ? { transports } : {}),
        }),
      );
    }
    await waitUntil(
      async () => (await redis.hget(redisKeys(prefix).round(`${TASK}:1`), 'state')) === 'COMMITTED',
      60_000,
      'round 1 committed',
    );
    // Every device's update was in it, and every device swapped in the promoted version.
    for (const d of devices) expect(d.record.accepted).toEqual([`${TASK}:1`]);
    for (const d of devices) expect(d.record.refused).toEqual([]);
    await waitUntil(
      () => devices.every((d) => d.device.adapterVersion === 1),
      20_000,
      'version 1 everywhere',
    );

    const [stock, pollingOnly, websocketOnly] = devices.map((d) => d.record.transports);
    // The default starts on long-polling and upgrades; the others keep the one they were given.
    expect(stock?.[0]).toBe('polling');
    await waitUntil(() => stock?.includes('websocket'), PATIENCE_MS, 'upgrade of the default device');
    expect(pollingOnly).toEqual(['polling']);
    expect(websocketOnly).toEqual(['websocket']);
  });
});
