import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '@flotilla/protocol';
import { createCoordinator, type Coordinator } from '@flotilla/coordinator/server';
import {
  AGGREGATE_QUEUE,
  AggregateJobDataSchema,
  aggregateJobId,
  redisOptionsFromUrl,
} from '@flotilla/coordinator/shared';
import { buildDevicePage } from '../web/build.js';
import { launchChromium } from '../../test-support/chromium.js';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import { mintEnrollmentToken, registerMlpTask } from './support/index.js';

const TASK = 'browser-task';
const OPERATOR = 'operator-token-for-browser-device-0123456789';
const DEVICE = 'browser-device-1';

/** The page connects only once its owner agrees (device-page-consent.test.ts tests that part). */
async function agreeAndJoin(page: Page): Promise<void> {
  await page.getByLabel('I understand what leaves this device and agree to take part.').check();
  await page.getByRole('button', { name: 'Join the training' }).click();
}

interface PageState {
  status: string;
  backend: string | null;
  publicKey: string | null;
  enrolled: boolean | null;
  events: Array<{ kind: string; detail: Record<string, unknown> }>;
  error: string | null;
}

describe('a browser device in Chromium', () => {
  let coordinator: Coordinator;
  let stateDir: string;
  let browser: Browser | null = null;

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'flotilla-browser-'));
    const page = await buildDevicePage({ outDir: join(stateDir, 'device-page') });
    coordinator = await createCoordinator({
      redisUrl: testRedisUrl(),
      prefix: uniquePrefix('browser'),
      stateDir,
      operatorToken: OPERATOR,
      staticMounts: [{ urlPrefix: '/device/', dir: page.outDir }],
    });
    await registerMlpTask(coordinator, {
      taskId: TASK,
      rounds: {
        minGoalFraction: 1,
        selectionTimeoutMs: 30_000,
        reportingDeadlineMs: 40_000,
        maxSteps: 20,
        maxSeconds: 20,
      },
      training: { epochs: 2, learningRate: 0.5 },
      clipNorm: 0.05,
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await coordinator.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('enrolls with keys in IndexedDB, trains on wasm, and its update is accepted into the aggregate job', async () => {
    if (!browser) throw new Error('no browser');
    const token = await mintEnrollmentToken(coordinator.url, OPERATOR);
    const context = await browser.newContext();
    const page = await context.newPage();
    // Every failed request, except the adapter probe that is a 404 until a version is promoted.
    const failed: string[] = [];
    page.on('response', (response) => {
      if (response.status() >= 400 && !response.url().endsWith('/adapters/latest/manifest'))
        failed.push(`${response.status()} ${response.url()}`);
    });
    page.on('pageerror', (error) => failed.push(`page error: ${error.message}`));
    const query = new URLSearchParams({ taskId: TASK, deviceId: DEVICE, token, seed: '3', maxRounds: '1' });
    await page.goto(`${coordinator.url}/device/?${query.toString()}`);
    await agreeAndJoin(page);
    await page.waitForFunction(
      () => {
        const s = (window as unknown as { flotilla?: PageState }).flotilla;
        return s?.events.some((e) => ['accepted', 'refused', 'failed', 'skip'].includes(e.kind));
      },
      undefined,
      { timeout: 60_000, polling: 200 },
    );
    const state = await page.evaluate(() => (window as unknown as { flotilla: PageState }).flotilla);
    expect(state.error, JSON.stringify(state.events)).toBeNull();
    expect(state.events.map((e) => e.kind)).toContain('accepted');
    expect(state.backend).toBe('wasm');
    expect(state.enrolled).toBe(true);

    // The key the coordinator enrolled is the one the page keeps in IndexedDB.
    const record = await coordinator.devices.getDevice(DEVICE);
    expect(record?.publicKey).toBe(state.publicKey);
    expect(record?.via).toBe('token');

    // The accepted update is in the round's store and in the aggregate job's update list.
    const roundId = `${TASK}:1`;
    const updates = await coordinator.rounds.updates(roundId);
    const stored = JSON.parse(updates[DEVICE] ?? 'null') as { blobDigest: string; norm: number } | null;
    expect(stored).not.toBeNull();
    const queue = new Queue(AGGREGATE_QUEUE, {
      connection: redisOptionsFromUrl(testRedisUrl()),
      prefix: coordinator.prefix,
    });
    try {
      const deadline = Date.now() + 15_000;
      let job = await queue.getJob(aggregateJobId(roundId));
      while (!job && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        job = await queue.getJob(aggregateJobId(roundId));
      }
      const data = AggregateJobDataSchema.parse(job?.data);
      expect(data.updates.map((u) => u.blobDigest)).toEqual([stored?.blobDigest]);
      // The coordinator recomputed the norm from the blob: within the clip bound the device enforced.
      expect(data.updates[0]?.norm).toBeLessThanOrEqual(0.05 * (1 + 1e-5));
      const blob = await coordinator.blobs.get(stored?.blobDigest ?? '');
      expect(blob && sha256Hex(blob)).toBe(stored?.blobDigest);
    } finally {
      await queue.close();
    }

    // A reload finds the same identity in IndexedDB: no second enrollment, same public key.
    await page.goto(
      `${coordinator.url}/device/?${new URLSearchParams({ taskId: TASK, deviceId: DEVICE }).toString()}`,
    );
    await agreeAndJoin(page);
    await page.waitForFunction(
      () => {
        const s = (window as unknown as { flotilla?: PageState }).flotilla;
        return s?.publicKey !== null || s.error !== null;
      },
      undefined,
      { timeout: 30_000, polling: 200 },
    );
    const again = await page.evaluate(() => (window as unknown as { flotilla: PageState }).flotilla);
    expect(again.error).toBeNull();
    expect(again.enrolled).toBe(false);
    expect(again.publicKey).toBe(state.publicKey);
    expect(failed).toEqual([]);
    await context.close();
  });
});
