import { beforeAll, describe, expect, it } from 'vitest';
import { summarizeRoundLog, type CheckInResult } from '@flotilla/protocol';
import { loraDelta, useTestFleet, waitFor, type TestDevice } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

// An operator pauses a task while it selects (devices are told to come back, the round neither
// selects nor is abandoned, and no round is used up), resumes it (the round selects and runs),
// stops it while it reports (the round is abandoned; devices are told the task is over; nothing
// resumes it), and archives it. Every move is in the round log, which still verifies.

const OPERATOR = 'operator-token-for-tests-0123456789';
const TASK = 'test-task';

describe('pausing, resuming, stopping and archiving a task', () => {
  const fleet = useTestFleet({
    task: {
      rounds: { goalCount: 3, overSelection: 1, minReports: 2, selectionTimeoutMs: 1500, maxRounds: 2 },
    },
    taskAfterDevices: true,
    devices: 3,
    label: 'ctl',
  });
  let url: string;

  const control = (action: string, body?: unknown, token = OPERATOR) =>
    fetch(`${url}/api/admin/tasks/${TASK}/${action}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  const checkIn = async (device: TestDevice) => {
    const ack = await device.checkIn(TASK);
    if (!ack.ok) throw new Error(`check-in refused: ${JSON.stringify(ack)}`);
    return ack.data as CheckInResult;
  };
  const round = (n: number) => fleet.tc.coordinator.rounds.get(`${TASK}:${n}`);

  beforeAll(() => {
    url = fleet.tc.coordinator.url;
  });

  it('pause keeps the selecting round open and tells devices to come back later', async () => {
    const first = await waitFor(() => round(1), PATIENCE_MS, 'round 1');
    const paused = await control('pause', { reason: 'maintenance window' });
    expect(paused.status).toBe(200);
    expect(await paused.json()).toMatchObject({
      taskId: TASK,
      status: 'paused',
      reason: 'maintenance window',
    });
    expect(await checkIn(fleet.devices[0] as TestDevice)).toMatchObject({
      status: 'retry',
      reason: 'task-paused',
    });
    // A selection timeout passes: still SELECTING (deadline moved on), no round 2.
    await waitFor(
      async () => ((await round(1))?.selectionDeadline ?? 0) > first.selectionDeadline,
      PATIENCE_MS,
      'selection extended while paused',
    );
    expect((await round(1))?.state).toBe('SELECTING');
    expect(await round(2)).toBeNull();

    // A second pause is refused, naming the status.
    const again = await control('pause');
    expect(again.status).toBe(400);
    expect(((await again.json()) as { error: { message: string } }).error.message).toBe(
      `task ${TASK}: pause applies to a task that is active; this one is paused`,
    );
  });

  it('resume lets the same round select and run', async () => {
    const resumed = await control('resume');
    expect(resumed.status).toBe(200);
    expect(await resumed.json()).toMatchObject({ status: 'active', reason: 'resume by the operator' });
    // Within one selection timeout (1.5 s) all three wait, so the round selects them at once.
    expect(await Promise.all(fleet.devices.map(checkIn))).toEqual(
      fleet.devices.map(() => ({ status: 'waiting' })),
    );
    const plans = await Promise.all(fleet.devices.map((d) => d.waitForPlan(`${TASK}:1`)));
    expect(plans).toHaveLength(3);
    expect((await round(1))?.state).toBe('REPORTING');
  });

  it('stop abandons the reporting round, tells devices the task is over, and cannot be undone', async () => {
    const plan = await (fleet.devices[0] as TestDevice).waitForPlan(`${TASK}:1`);
    expect((await (fleet.devices[0] as TestDevice).report(plan, loraDelta(0.2))).ok).toBe(true);
    const stopped = await control('stop', { reason: 'enough data' });
    expect(await stopped.json()).toMatchObject({ status: 'stopped', reason: 'enough data' });
    const abandoned = await waitFor(
      async () => {
        const r = await round(1);
        return r?.state === 'ABANDONED' ? r : null;
      },
      PATIENCE_MS,
      'round 1 abandoned',
    );
    expect(abandoned.reason).toBe('task stopped by the operator: enough data');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await round(2)).toBeNull();
    expect(await checkIn(fleet.devices[1] as TestDevice)).toMatchObject({
      status: 'retry',
      reason: 'task-stopped',
    });
    for (const action of ['resume', 'pause', 'stop']) expect((await control(action)).status).toBe(400);
    const archived = await control('archive');
    expect(await archived.json()).toMatchObject({ status: 'archived', reason: 'archive by the operator' });
    expect((await control('archive')).status).toBe(400);
  });

  it('refuses without the operator token, for an unknown task, and with an unknown body field', async () => {
    expect((await control('pause', undefined, 'not-the-operator-token-000000')).status).toBe(401);
    const unknown = await fetch(`${url}/api/admin/tasks/nosuch/pause`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR}` },
    });
    expect(unknown.status).toBe(404);
    const typo = await control('archive', { reasn: 'x' });
    expect(typo.status).toBe(400);
    const verb = await fetch(`${url}/api/admin/tasks/${TASK}/delete`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR}` },
    });
    expect(verb.status).toBe(404);
  });

  it('logs every move; the log verifies and audit show lists them', async () => {
    const records = await fleet.roundLogWhen('round.abandoned logged', (log) =>
      log.some((r) => r.event.type === 'round.abandoned'),
    );
    expect((await fleet.roundLogVerdict()).problems).toEqual([]);
    const types = records.map((r) =>
      r.event.type === 'task.control' ? `task.control ${r.event.action}` : r.event.type,
    );
    expect(types).toEqual([
      'task.control pause',
      'task.control resume',
      'round.opened',
      'round.selected',
      'update.accepted',
      'task.control stop',
      'round.abandoned',
      'task.control archive',
    ]);
    expect(summarizeRoundLog(records).taskControls.map((c) => c.reason)).toEqual([
      'maintenance window',
      'resume by the operator',
      'enough data',
      'archive by the operator',
    ]);
  });
});
