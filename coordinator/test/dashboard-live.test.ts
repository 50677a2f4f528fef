import { mkdirSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex, type RoundPlan } from '@flotilla/protocol';
import {
  defaultRoundLogPath,
  loadOrCreatePseudonymSecret,
  openRoundLog,
  readRoundLog,
} from '../src/shared/round-log/index.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { startAggregationWorker, type AggregationWorker } from '../src/worker/aggregation-worker.js';
import { testRedisUrl } from '../../test-support/redis.js';
import {
  connectFleet,
  loraDelta,
  startTestCoordinator,
  testTaskDefinition,
  waitFor,
} from './support/index.js';
import type { TestCoordinator, TestDevice } from './support/index.js';
import { launchChromium } from '../../test-support/chromium.js';

const OPERATOR = 'operator-token-for-tests-0123456789';
const AUDITOR = 'auditor-token-for-dashboard-tests-0123';
const TASK = 'dash-task';
const SCREENSHOTS = new URL('../../test-results/', import.meta.url);

async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/dashboard`);
  await page.fill('#token', token);
  await page.click('#login button[type=submit]');
}

// One page follows one round from sign-in to decision: the `it`s are its steps, in order, each
// checking one thing the page shows (they share the page, the devices and the round).
describe('the dashboard in Chromium while a round runs', () => {
  const roundId = `${TASK}:1`;
  let tc: TestCoordinator;
  let context: BrowserContext;
  let page: Page;
  const offsite: string[] = [];
  let plans: [RoundPlan, RoundPlan, RoundPlan];
  let decided: string;
  let row: Locator;
  let worker: AggregationWorker;
  let browser: Browser | null = null;
  let devices: TestDevice[] = [];
  const logRedis = new Redis(redisOptionsFromUrl(testRedisUrl()));

  beforeAll(async () => {
    tc = await startTestCoordinator({
      operatorToken: OPERATOR,
      auditorTokens: [AUDITOR],
      dashboard: { streamIntervalMs: 250 },
    });
    const { coordinator, stateDir } = tc;
    worker = await startAggregationWorker({
      redisUrl: testRedisUrl(),
      prefix: coordinator.prefix,
      stateDir,
      signingKey: coordinator.coordinatorKey,
      useThread: false,
      noiseSeed: 'dashboard-test',
      // A server holdout stand-in: every adapter scores 13 of 16 (the dashboard and /metrics show
      // what the worker measured, whatever it is).
      evaluate: () => Promise.resolve({ accuracy: 13 / 16, loss: 0.5, examples: 16 }),
      roundLog: openRoundLog({
        redis: logRedis,
        prefix: coordinator.prefix,
        filePath: defaultRoundLogPath(stateDir),
        signingKey: coordinator.coordinatorKey,
        pseudonymSecret: await loadOrCreatePseudonymSecret(stateDir),
      }),
    });
    const base = new Uint8Array(256).map((_, i) => (i * 37) % 251);
    const digest = sha256Hex(base);
    await coordinator.blobs.put(digest, base);
    await coordinator.createTask(
      testTaskDefinition(
        { digest, bytes: base.length },
        {
          taskId: TASK,
          rounds: {
            goalCount: 3,
            overSelection: 1,
            minReports: 2,
            selectionTimeoutMs: 30_000,
            reportingDeadlineMs: 30_000,
            retryAfterMs: 500,
          },
          dp: { noiseMultiplier: 0.5, delta: 1e-5, epsilonBudget: 100, populationSize: 10 },
        },
      ),
    );
    browser = await launchChromium();
    mkdirSync(SCREENSHOTS, { recursive: true });
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    page = await context.newPage();
    page.on('request', (request) => {
      if (!request.url().startsWith(coordinator.url)) offsite.push(request.url());
    });
  });

  afterAll(async () => {
    await browser?.close();
    for (const d of devices) d.disconnect();
    await worker.close();
    await tc.stop();
    logRedis.disconnect();
  });

  it('refuses a wrong token, then shows an operator the selecting round on a live stream', async () => {
    await signIn(page, tc.coordinator.url, 'not-the-token-at-all-0000');
    await expect.poll(() => page.textContent('#login-error')).toBe('That token was refused.');
    await page.fill('#token', OPERATOR);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('[data-testid=round-state]');
    expect(await page.textContent('[data-testid=role]')).toBe('operator');
    expect(await page.textContent('[data-testid=round-state]')).toBe('SELECTING');
    expect(await page.textContent('[data-testid=countdown]')).toMatch(/^selection closes in \d+\.\d s$/);
    await expect.poll(() => page.textContent('[data-testid=live]')).toBe('live');
  });

  it('shows the fleet connecting and the round moving to reporting', async () => {
    devices = await connectFleet(tc.coordinator, 4);
    const [a, b, c] = devices as [TestDevice, TestDevice, TestDevice];
    for (const d of [a, b, c]) expect(await d.checkIn(TASK)).toMatchObject({ ok: true });
    plans = (await Promise.all([a, b, c].map((d) => d.waitForPlan(roundId)))) as typeof plans;
    await expect.poll(() => page.textContent('[data-testid=round-state]')).toBe('REPORTING');
    await expect.poll(() => page.textContent('[data-testid=fleet-connected]')).toBe('4');
    expect(await page.textContent('[data-testid=fleet-eligible]')).toBe('3');
    expect(await page.textContent('[data-testid=countdown]')).toMatch(/^reporting closes in \d+\.\d s$/);
  });

  it('counts an accepted update as it arrives', async () => {
    const [a] = devices as [TestDevice];
    expect(await a.report(plans[0], loraDelta(0.3))).toMatchObject({ ok: true });
    await expect.poll(() => page.textContent('[data-testid=round-accepted]')).toBe('1');
    await page.screenshot({ path: new URL('dashboard-reporting.png', SCREENSHOTS).pathname });
  });

  it("follows the round to the worker's decision, with its refusals by reason, and the next round opens", async () => {
    const [, b, c] = devices as [TestDevice, TestDevice, TestDevice];
    expect(await b.report(plans[1], loraDelta(0.6))).toMatchObject({ ok: true });
    // A final refusal: c has answered, and with it every selected device.
    expect(await c.report(plans[2], loraDelta(2))).toMatchObject({
      ok: false,
      error: { code: 'NORM_EXCEEDED' },
    });
    decided = await waitFor(
      async () => {
        const state = (await tc.coordinator.rounds.get(roundId))?.state;
        return state === 'COMMITTED' || state === 'REJECTED' ? state : null;
      },
      30_000,
      'worker decision',
    );
    row = page.locator('[data-testid=history-row][data-round="1"]');
    await expect.poll(() => row.getAttribute('data-state'), { timeout: 10_000 }).toBe(decided);
    expect(await row.textContent()).toContain('NORM_EXCEEDED×1');
    await expect.poll(() => page.textContent('[data-testid=round-id]')).toBe('#2');
    expect(await page.textContent('[data-testid=round-state]')).toBe('SELECTING');
  });

  it('verifies the audit chain up to the tree head that signs the decision', async () => {
    const { coordinator } = tc;
    await expect
      .poll(() => page.textContent('[data-testid=chain-status]'), { timeout: 10_000 })
      .toBe('verified');
    // Every record so far (9 for this round: opened, selected, 2 accepted, refused, closed,
    // aggregation, audit, decision) verified, up to the head.
    expect(await readRoundLog(coordinator.redis, coordinator.prefix)).toHaveLength(9);
    // The log ends in the tree head that signs the decision: verified through that line.
    const lines = await coordinator.redis.xlen(`${coordinator.prefix}:roundlog:stream`);
    await expect
      .poll(() => page.textContent('[data-testid=chain-detail]'), { timeout: 10_000 })
      .toContain(`verified through #${lines - 1}`);
  });

  it('shows the committed version and its holdout accuracy, also as a /metrics gauge', async () => {
    expect(decided).toBe('COMMITTED');
    expect(await page.textContent('[data-testid=adapters]')).toContain('v1');
    // The live version's quality on the worker's holdout, on the page and as a /metrics gauge.
    await expect.poll(() => page.textContent('[data-testid=holdout-accuracy]')).toBe('81.3%');
    expect(await page.textContent('[data-testid=task-status]')).toBe('running');
    const scrape = await (await fetch(`${tc.coordinator.url}/metrics`)).text();
    expect(scrape).toContain(`flotilla_adapter_holdout_accuracy{task="${TASK}"} 0.8125`);
  });

  it("charts the ε spent and withholds the DP round's per-update norms", async () => {
    // ε was charged for the noisy round: the privacy chart has a point.
    expect(await page.locator('svg[aria-label="privacy spent"] circle').count()).toBe(1);
    // A DP round's per-update norms are withheld from the page (docs/privacy.md): no dots, and
    // its history row says so.
    expect(await page.locator('svg[aria-label="update norms"] circle').count()).toBe(0);
    expect(await row.textContent()).toContain('withheld (DP)');
    await page.screenshot({ path: new URL('dashboard-live.png', SCREENSHOTS).pathname, fullPage: true });
  });

  it('lets an operator issue an enrollment token, and the page requests nothing off the coordinator', async () => {
    await page.click('[data-testid=operator] button');
    await expect
      .poll(() => page.textContent('[data-testid=enrollment-token]'))
      .toMatch(/^token [A-Za-z0-9_-]{43} \(expires /);
    expect(offsite).toEqual([]);
  });

  it('shows auditors a read-only page with no device ids', async () => {
    const auditorPage = await context.newPage();
    await signIn(auditorPage, tc.coordinator.url, AUDITOR);
    await auditorPage.waitForSelector('[data-testid=round-state]');
    expect(await auditorPage.textContent('[data-testid=role]')).toBe('auditor (read-only)');
    expect(await auditorPage.locator('[data-testid=operator]').count()).toBe(0);
    expect(await auditorPage.textContent('body')).not.toContain('dev-0');
    await auditorPage.screenshot({
      path: new URL('dashboard-auditor.png', SCREENSHOTS).pathname,
      fullPage: true,
    });
    await context.close();
  });

  it('serves auditors the state API with no device ids, and refuses it without a token', async () => {
    const asAuditor = await fetch(`${tc.coordinator.url}/dashboard/api/state`, {
      headers: { authorization: `Bearer ${AUDITOR}` },
    });
    const text = await asAuditor.text();
    expect(JSON.parse(text)).toMatchObject({ role: 'auditor' });
    expect(text).not.toContain('dev-0');
    expect((await fetch(`${tc.coordinator.url}/dashboard/api/state`)).status).toBe(401);
  });
});
