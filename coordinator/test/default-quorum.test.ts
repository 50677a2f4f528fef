// Issue 18: a task without `minReports` gets a quorum from the over-selection rules, so one
// refusal does not abandon the round. Before, `minReports` was required and operators set it to
// the devices per round: any single refusal abandoned the round (4 of 10 rounds in a 10-device run).
import { describe, expect, it } from 'vitest';
import type { RoundPlan } from '@flotilla/protocol';
import { createTestTask, loraDelta, useTestFleet, waitFor } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

describe('default quorum', () => {
  // A fleet per task: a device that took one task's round is not selected again while it lasts.
  const TASKS = ['defaults', 'explicit'];
  const fleet = useTestFleet({ tasks: [], devices: 10 * TASKS.length, label: 'quorum' });
  const devicesOf = (taskId: string) => {
    const first = 10 * TASKS.indexOf(taskId);
    return fleet.devices.slice(first, first + 10);
  };

  /**
   * Registers the task, then all 10 devices take its first round; device 0's update is refused
   * (norm 5 > clip 1). `minReports: undefined` leaves the field out of the task as sent.
   */
  async function roundWithOneRefusal(taskId: string, minReports: number | undefined) {
    const devices = devicesOf(taskId);
    await createTestTask(fleet.tc.coordinator, {
      taskId,
      rounds: {
        goalCount: 10,
        minReports,
        selectionTimeoutMs: 3_000,
        // The round closes once every device answered; the deadline only bounds a failure.
        reportingDeadlineMs: 300_000,
        maxRounds: 1,
      },
    });
    await Promise.all(devices.map((d) => d.checkIn(taskId)));
    const plans = await Promise.all(devices.map((d) => d.waitForPlan(`${taskId}:1`)));
    const acks = await Promise.all(
      devices.map((d, i) => d.report(plans[i] as RoundPlan, loraDelta(i === 0 ? 5 : 0.5))),
    );
    expect(acks.filter((ack) => ack.ok)).toHaveLength(9);
    expect(acks[0]).toMatchObject({ ok: false, error: { code: 'NORM_EXCEEDED' } });
    // A refusal for the norm is final (the device will not resend that update): every selected
    // device has answered, with 9 updates, and the round closes without waiting for its deadline.
    return waitFor(
      async () => {
        const round = await fleet.tc.coordinator.rounds.get(`${taskId}:1`);
        return round && round.state !== 'REPORTING' && round.state !== 'SELECTING' ? round : null;
      },
      PATIENCE_MS,
      `${taskId}:1 closed`,
    );
  }

  it('a task without minReports gets floor(0.8 × 10 / 1.3) = 6; one refusal among 10 does not abandon its round', async () => {
    const round = await roundWithOneRefusal('defaults', undefined);
    const signed = await fleet.tc.coordinator.tasks.getTask('defaults');
    expect(signed?.task.rounds.minReports).toBe(6);
    expect(round).toMatchObject({ state: 'AGGREGATING', minReports: 6, acceptedCount: 9 });
  });

  it('an explicit minReports equal to the devices per round is honoured: the same refusal abandons', async () => {
    const round = await roundWithOneRefusal('explicit', 10);
    expect(round).toMatchObject({ state: 'ABANDONED', reason: 'quorum missed: 9 of 10 updates' });
  });
});
