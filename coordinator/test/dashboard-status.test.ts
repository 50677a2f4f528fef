import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoundPlan } from '@flotilla/protocol';
import type { DashboardSnapshot } from '../src/server/dashboard/index.js';
import { loraDelta, useTestFleet, waitFor, type TestDevice } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';
import { launchChromium } from '../../test-support/chromium.js';

// What the dashboard says about tasks that are not simply running, in Chromium and in its JSON:
// a task that ran its maxRounds is `finished`, a paused one `paused` with the operator's reason,
// an archived one is listed apart; a round whose every update sits on the clip bound is explained;
// and three devices checked in to two tasks' rounds are three eligible devices, not six.

const OPERATOR = 'operator-token-for-tests-0123456789';

describe('dashboard task status, clip-bound note and eligible devices', () => {
  const rounds = { goalCount: 3, overSelection: 1, minReports: 3, selectionTimeoutMs: 30_000, maxRounds: 1 };
  const fleet = useTestFleet({
    coordinator: { operatorToken: OPERATOR, dashboard: { streamIntervalMs: 100 } },
    tasks: ['clipped', 'paused', 'archived'].map((taskId) => ({ taskId, rounds })),
    taskAfterDevices: true,
    devices: 3,
    label: 'dash',
  });
  let browser: Browser | null = null;

  const snapshot = async () =>
    (await (
      await fetch(`${fleet.tc.coordinator.url}/dashboard/api/state`, {
        headers: { authorization: `Bearer ${OPERATOR}` },
      })
    ).json()) as DashboardSnapshot;
  const control = (taskId: string, action: string, reason: string) =>
    fleet.tc.coordinator.controlTask({ taskId, action: action as 'pause', reason });
  const plans = (roundId: string) => Promise.all(fleet.devices.map((d) => d.waitForPlan(roundId)));

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('counts each checked-in device once across tasks', async () => {
    for (const taskId of ['paused', 'archived'])
      for (const d of fleet.devices) expect(await d.checkIn(taskId)).toMatchObject({ ok: true });
    await plans('paused:1');
    await plans('archived:1');
    const state = await snapshot();
    expect(state.tasks.map((t) => t.current?.checkedIn)).toEqual([0, 3, 3]);
    expect(state.fleet.eligible).toBe(3);
  });

  it('marks finished, paused and archived tasks and explains a column of norms at the clip bound', async () => {
    await control('paused', 'pause', 'waiting for the new data');
    await control('archived', 'archive', 'superseded by clipped');
    // clipped:1 — two updates clipped exactly to the bound, one skip: the quorum of 3 is missed,
    // the task's only round has ended.
    for (const d of fleet.devices) expect(await d.checkIn('clipped')).toMatchObject({ ok: true });
    const [p0, p1] = (await plans('clipped:1')) as [RoundPlan, RoundPlan];
    const [d0, d1, d2] = fleet.devices as [TestDevice, TestDevice, TestDevice];
    expect(await d0.report(p0, loraDelta(1), { reportedNorm: 1, clipped: true })).toMatchObject({ ok: true });
    expect(await d1.report(p1, loraDelta(1), { reportedNorm: 1, clipped: true })).toMatchObject({ ok: true });
    expect(
      (await d2.emit('update:skip', { roundId: 'clipped:1', reason: 'validation-gate', detail: 'x' })).ok,
    ).toBe(true);
    const state = await waitFor(
      async () => {
        const s = await snapshot();
        return s.tasks.find((t) => t.taskId === 'clipped')?.status === 'finished' ? s : null;
      },
      PATIENCE_MS,
      'clipped finished',
    );
    const byId = new Map(state.tasks.map((t) => [t.taskId, t]));
    expect(byId.get('clipped')).toMatchObject({
      status: 'finished',
      statusReason: 'its 1 rounds have ended',
      holdout: null,
    });
    expect(byId.get('clipped')?.history[0]).toMatchObject({
      state: 'ABANDONED',
      clipped: 2,
      allAtClipBound: true,
      clipNorm: 1,
    });
    expect(byId.get('paused')).toMatchObject({ status: 'paused', statusReason: 'waiting for the new data' });
    expect(byId.get('archived')).toMatchObject({ status: 'archived', statusReason: 'superseded by clipped' });
    expect(byId.get('archived')?.current).toMatchObject({
      state: 'ABANDONED',
      reason: 'task archived by the operator: superseded by clipped',
    });

    if (!browser) throw new Error('no browser');
    const page = await browser.newPage();
    await page.goto(`${fleet.tc.coordinator.url}/dashboard`);
    await page.fill('#token', OPERATOR);
    await page.click('#login button[type=submit]');
    const clipped = page.locator('section[data-task="clipped"]');
    await clipped.waitFor();
    expect(await clipped.locator('[data-testid=task-status]').textContent()).toBe('finished');
    expect(await clipped.locator('[data-testid=clip-note]').textContent()).toContain(
      'Round #1: every update sits on the clip bound (1).',
    );
    expect(await clipped.locator('[data-testid=history-norms]').textContent()).toContain('all at the bound');
    expect(await clipped.textContent()).toContain('no server holdout');
    const paused = page.locator('section[data-task="paused"]');
    expect(await paused.locator('[data-testid=task-status]').textContent()).toBe('paused');
    expect(await paused.locator('[data-testid=task-status-reason]').textContent()).toBe(
      ' waiting for the new data',
    );
    // Archived: not a section of its own, a line in the archived list.
    expect(await page.locator('section[data-task="archived"]').count()).toBe(0);
    expect(await page.locator('[data-testid=archived] summary').textContent()).toBe('Archived tasks (1)');
    expect(await page.textContent('[data-testid=fleet-eligible]')).toBe('3');
    await page.close();
  });
});
