import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoundLogEvent, RoundLogEventOf } from '@flotilla/protocol';
import { readRoundLog, redisOptionsFromUrl } from '@flotilla/coordinator/shared';
import { launchChromium } from '../../test-support/chromium.js';
import { PATIENCE_MS } from '../../test-support/patience.js';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import {
  flotilla,
  mintEnrollmentToken,
  registerMlpTaskOverHttp,
  startCliCoordinator,
} from './support/index.js';

// The browser device page as its owner meets it, served by `flotilla coordinator --device-page`
// (a real process on a real Redis) to Debian's Chromium: it explains what leaves the device,
// nothing reaches the coordinator before the person agrees, then a round runs and is told in
// words and in the chart, and Stop disconnects the device for good.

const TASK = 'page-task';
const DEVICE = 'page-device-1';
const OPERATOR = 'operator-token-for-device-page-0123456789';
// Each round trains until its time budget (TRAIN_SECONDS) ends: 100 epochs of 4,800 examples in
// batches of 8 are 60,000 steps, far more than fit in it. Stop,
// pressed once round 2 starts, then lands while it trains however fast or loaded the machine is
// (1,200 steps took under a second on wasm, and Stop came after round 2's update was accepted).
const EXAMPLES = 4800;
const TRAIN_SECONDS = 10;
const CLIP = 0.05;
const SCREENSHOTS = new URL('../../test-results/', import.meta.url);

interface PageState {
  phase: string;
  status: string;
  backend: string | null;
  rounds: Array<{ round: number; accuracy: number; loss: number }>;
  events: Array<{ kind: string; detail: Record<string, unknown> }>;
  error: string | null;
}

const pageState = (page: Page) =>
  page.evaluate(() => (window as unknown as { flotilla: PageState }).flotilla);

/**
 * Waits in the page until its state satisfies `predicate` (a function of `window.flotilla`); a
 * timeout names the predicate and shows the page's state, so a stall says where the device stood.
 */
async function pageWaits(page: Page, predicate: string, timeout = 4 * PATIENCE_MS): Promise<void> {
  try {
    await page.waitForFunction(`(() => { const s = window.flotilla; return ${predicate}; })()`, undefined, {
      timeout,
      polling: 200,
    });
  } catch (error) {
    const state = await pageState(page).catch(() => 'unreadable');
    throw new Error(`page never reached ${predicate}; its state: ${JSON.stringify(state)}`, { cause: error });
  }
}

/** One sample of the coordinator's Prometheus text, by exact series name. */
async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (line === undefined) throw new Error(`no ${series} in /metrics`);
  return Number(line.slice(series.length + 1));
}

async function waitUntil(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 4 * PATIENCE_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('the browser device page served by flotilla coordinator --device-page', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'flotilla-page-'));
  const prefix = uniquePrefix('page');
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  let coordinator: Awaited<ReturnType<typeof startCliCoordinator>>;
  let browser: Browser | null = null;

  beforeAll(async () => {
    coordinator = await startCliCoordinator(
      [
        ...['--redis-url', testRedisUrl(), '--prefix', prefix, '--state-dir', stateDir],
        ...['--device-page', '--with-worker'],
      ],
      { FLOTILLA_OPERATOR_TOKEN: OPERATOR, FLOTILLA_LOG_LEVEL: 'warn' },
      // The page is bundled (esbuild, tfjs included) before the coordinator listens.
      { readyTimeoutMs: 6 * PATIENCE_MS },
    );
    await registerMlpTaskOverHttp(coordinator.url, OPERATOR, {
      taskId: TASK,
      rounds: {
        // Two rounds: the test presses Stop while round 2 trains. The only device stops, so round 2
        // cannot commit unless Stop came too late (which the test is there to catch).
        maxRounds: 2,
        minGoalFraction: 1,
        selectionTimeoutMs: 4 * PATIENCE_MS,
        reportingDeadlineMs: 4 * PATIENCE_MS,
        maxSteps: 1_000_000,
        maxSeconds: TRAIN_SECONDS,
      },
      // SGD at 0.05: ten seconds of steps at 0.5 risk diverging, and round 1 must commit.
      training: { epochs: 100, learningRate: 0.05 },
      clipNorm: CLIP,
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await coordinator.stop();
    redis.disconnect();
    rmSync(stateDir, { recursive: true, force: true });
  });

  // The page's life in order: each step below is one behaviour, and starts where the last ended.
  let page: Page;
  const problems: string[] = [];
  const requested: string[] = [];
  let state: PageState;
  let accepted: RoundLogEventOf<'update.accepted'>;
  const joinButton = () => page.getByRole('button', { name: 'Join the training' });
  const stopButton = () => page.getByRole('button', { name: 'Stop and disconnect' });
  const statusLine = () => page.getByRole('status');
  const devices = async () =>
    (
      (await (
        await fetch(`${coordinator.url}/api/admin/devices`, {
          headers: { authorization: `Bearer ${OPERATOR}` },
        })
      ).json()) as { devices: Array<{ deviceId: string }> }
    ).devices.map((d) => d.deviceId);

  it('explains what leaves the device before anything else, with Join and Stop disabled', async () => {
    if (!browser) throw new Error('no browser');
    expect(coordinator.output()).toContain(`device page ${coordinator.url}/device/?taskId=<task>`);
    const token = await mintEnrollmentToken(coordinator.url, OPERATOR);
    page = await browser.newPage();
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('request', (request) => requested.push(new URL(request.url()).pathname));
    const query = new URLSearchParams({
      taskId: TASK,
      deviceId: DEVICE,
      token,
      examples: String(EXAMPLES),
      seed: '3',
    });
    await page.goto(`${coordinator.url}/device/?${query.toString()}`, { waitUntil: 'load' });
    await expect(page.getByRole('heading', { name: 'What leaves this device' }).isVisible()).resolves.toBe(
      true,
    );
    const explanation = await page.locator('section[aria-labelledby="leaves-heading"]').innerText();
    expect(explanation).toContain('change training made to the adapter');
    expect(explanation).toMatch(/clipped/);
    expect(explanation).toMatch(/signed/);
    expect(explanation).toContain('Your examples themselves: no record, value or label is ever sent.');
    expect(await page.locator('#task').innerText()).toBe(TASK);
    expect(await joinButton().isDisabled()).toBe(true);
    expect(await stopButton().isDisabled()).toBe(true);
    expect(await statusLine().getAttribute('aria-live')).toBe('polite');
    expect(await statusLine().innerText()).toBe('Not connected. Nothing has been sent.');
  });

  it('sends nothing before consent: no socket, no blob, no enrolment, only its own files fetched', async () => {
    expect((await pageState(page)).phase).toBe('consent');
    expect(await metric(coordinator.url, 'flotilla_socket_connections_total')).toBe(0);
    expect(await metric(coordinator.url, 'flotilla_blob_bytes_sent_total')).toBe(0);
    expect(await devices()).toEqual([]);
    expect(requested.filter((path) => !path.startsWith('/device/'))).toEqual([]);
  });

  it('enrolls and connects once the person agrees, and round 1 commits with its update', async () => {
    // Consent: the box enables the button; joining enrolls and connects.
    await page.getByLabel('I understand what leaves this device and agree to take part.').check();
    expect(await joinButton().isEnabled()).toBe(true);
    await joinButton().click();
    await pageWaits(page, "s.events.some((e) => e.kind === 'adapter') || s.error !== null");
    state = await pageState(page);
    expect(state.error, JSON.stringify(state.events)).toBeNull();
    expect(problems).toEqual([]);
    expect(await devices()).toEqual([DEVICE]);
    expect(await metric(coordinator.url, 'flotilla_socket_connections_total')).toBeGreaterThanOrEqual(1);
    // The coordinator promoted version 1 with this device's update (asked by number: round 2 may
    // already have started).
    const manifest = await fetch(`${coordinator.url}/api/tasks/${TASK}/adapters/1/manifest`);
    expect(manifest.status).toBe(200);
    expect(((await manifest.json()) as { manifest: { version: number } }).manifest.version).toBe(1);
    const events: RoundLogEvent[] = (await readRoundLog(redis, prefix)).map((r) => r.event);
    const found = events.find((e) => e.type === 'update.accepted' && e.roundId === `${TASK}:1`);
    if (found?.type !== 'update.accepted') throw new Error('no accepted update in round 1');
    accepted = found;
  });

  it('tells round 1 in words: what it trained on, what it sent, that it was accepted, the new version', async () => {
    // What it sent is the size and clip the coordinator recorded.
    const history = await page.getByTestId('history').locator('li').allInnerTexts();
    expect(history[0]).toBe('Connecting…');
    expect(history).toContain(`Round 1: training on your ${EXAMPLES} examples…`);
    const trained = history.find((line) => line.startsWith('Round 1: training finished.'));
    expect(trained).toContain(
      `(${((accepted.bytes ?? 0) / 1024).toFixed(1)} KB, length ${(accepted.norm ?? 0).toFixed(3)}, `,
    );
    expect(trained).toContain(
      accepted.clipped ? `scaled down to the task's limit of ${CLIP}` : `within the task's limit of ${CLIP}`,
    );
    expect(trained).toContain("signed with this browser's key");
    expect(history).toContain('Round 1: your update was accepted.');
    expect(history).toContain(
      'The shared model is now at version 1; this browser downloaded it and checked its signature.',
    );
  });

  it('draws round 1 in the chart at the holdout accuracy the device measured', async () => {
    const point = state.rounds.find((p) => p.round === 1);
    expect(point).toBeDefined();
    const title = await page.locator('#chart g.point[data-round="1"] title').textContent();
    expect(title).toBe(
      `Round 1: accuracy ${((point?.accuracy ?? 0) * 100).toFixed(0)}%, loss ${(point?.loss ?? 0).toFixed(3)}`,
    );
    expect(await page.locator('#chart svg[role="img"]').count()).toBe(1);
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: new URL('device-page-round.png', SCREENSHOTS).pathname, fullPage: true });
  });

  it('stops while round 2 trains: nothing of round 2 leaves the browser, and the socket closes', async () => {
    // No blob byte reaches the coordinator, no update or skip is logged.
    await pageWaits(page, `s.events.some((e) => e.kind === 'round' && e.detail.roundId === '${TASK}:2')`);
    const bytesIn = await metric(coordinator.url, 'flotilla_blob_bytes_received_total');
    expect(await stopButton().isEnabled()).toBe(true);
    await stopButton().click();
    await pageWaits(page, "s.phase === 'stopped'");
    expect(await statusLine().innerText()).toBe(
      'Stopped. This browser is disconnected and sends nothing more.',
    );
    expect(await stopButton().isDisabled()).toBe(true);
    await waitUntil('the coordinator to see the device disconnect', async () => {
      return (await metric(coordinator.url, 'flotilla_connected_devices')) === 0;
    });
    const round2 = (await pageState(page)).events.filter((e) => e.detail.roundId === `${TASK}:2`);
    expect(round2.map((e) => e.kind)).toEqual(['round']);
    expect(await metric(coordinator.url, 'flotilla_blob_bytes_received_total')).toBe(bytesIn);
    const logged = (await readRoundLog(redis, prefix))
      .map((r) => r.event)
      .filter((e) => 'roundId' in e && e.roundId === `${TASK}:2` && e.type.startsWith('update.'));
    expect(logged).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('names the flag in --help and refuses a FLOTILLA_DEVICE_PAGE it cannot read (exit 2)', async () => {
    expect((await flotilla(['coordinator', '--help'])).stdout).toContain('FLOTILLA_DEVICE_PAGE=1');
    const bad = await flotilla(['coordinator', '--port', '0', '--state-dir', stateDir], {
      FLOTILLA_DEVICE_PAGE: 'yes',
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('flotilla: FLOTILLA_DEVICE_PAGE: expected 1, true, 0 or false, got "yes"\n');
  });
});
