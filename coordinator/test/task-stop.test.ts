import { describe, expect, it } from 'vitest';
import { readTaskStop, stopTask } from '../src/shared/task-stop.js';
import { useTestFleet, waitFor, type TestDevice } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

// The worker stops a task (e.g. its ε budget cannot pay for another noised aggregate): the
// coordinator opens no further round of it, now or after a restart, and says so to devices.

describe('a task the worker stopped', () => {
  const fleet = useTestFleet({
    task: {
      rounds: { goalCount: 3, overSelection: 1, minReports: 2, selectionTimeoutMs: 800 },
    },
    devices: 1,
    label: 'stop',
  });

  it('gets no round after the one that stopped it', async () => {
    const { redis, keys } = fleet.tc.coordinator;
    await waitFor(
      async () => (await fleet.tc.coordinator.rounds.current('test-task')) !== null,
      PATIENCE_MS,
      'round 1',
    );
    const reason = 'privacy budget exhausted: test';
    await stopTask(redis, keys.prefix, 'test-task', { reason, roundId: 'test-task:1', at: Date.now() });
    // A second stop keeps the first reason.
    await stopTask(redis, keys.prefix, 'test-task', {
      reason: 'later',
      roundId: 'test-task:1',
      at: Date.now(),
    });
    expect((await readTaskStop(redis, keys.prefix, 'test-task'))?.reason).toBe(reason);

    // Round 1 ends (one device of three checks in before the selection timeout); round 2 must not open.
    await (fleet.devices[0] as TestDevice).checkIn('test-task');
    await fleet.roundIn('test-task:1', 'ABANDONED');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await fleet.tc.coordinator.rounds.current('test-task'))?.roundId).toBe('test-task:1');
    const checkin = await (fleet.devices[0] as TestDevice).checkIn('test-task');
    expect(checkin.ok && checkin.data).toMatchObject({ status: 'retry', reason: 'task-stopped' });
  });
});
