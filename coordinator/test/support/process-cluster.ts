import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { expect } from 'vitest';
import type { RoundLogEvent, RoundPlan, TaskDefinitionInput } from '@flotilla/protocol';
import { loadOrCreateCoordinatorKey } from '../../src/shared/coordinator-key.js';
import { redisKeys, type RedisKeys } from '../../src/shared/keys.js';
import { redisOptionsFromUrl } from '../../src/shared/redis-connection.js';
import { readRoundOutcome, type RoundOutcome } from '../../src/shared/round-outcomes.js';
import {
  defaultRoundLogPath,
  loadOrCreatePseudonymSecret,
  openRoundLog,
  readRoundLog,
} from '../../src/shared/round-log/index.js';
import type { AggregationWorker } from '../../src/worker/aggregation-worker.js';
import { loadAggregationWorker } from './lazy-modules.js';
import { testRedisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { startCoordinatorProcess, type ChildCoordinator } from './child-coordinator.js';
import { spawnChildWorker, workerProcessEnv, type ChildWorker } from './child-worker.js';
import { operatorFetch, registerDeviceOverHttp } from './operator-api.js';
import { createTestTaskOverHttp } from './test-task.js';
import { TestDevice } from './test-device.js';
import { waitFor } from './wait-for.js';

export const OPERATOR_TOKEN = 'operator-token-for-process-tests-0123';

/** An audit that never rejects, so outcomes depend on the policy under test only. */
const NEVER_REJECTS = {
  madThreshold: 1e6,
  minCosine: -1,
  maxFlaggedFraction: 1,
  maxModuleDrift: 1e9,
  maxAccuracyDrop: 1,
};

/**
 * Coordinator processes (`coordinator/src/server/main.ts`, each its own pid) on one Redis,
 * prefix and state directory, plus an in-process aggregation worker that retains deltas so
 * aggregates can be recomputed. Every child is stopped by its own pid in `stop()`.
 */
export class ProcessCluster {
  readonly redisUrl = testRedisUrl();
  readonly redis = new Redis(redisOptionsFromUrl(this.redisUrl));
  readonly prefix: string;
  readonly keys: RedisKeys;
  readonly stateDir = mkdtempSync(join(tmpdir(), 'flotilla-proc-'));
  readonly coordinators: ChildCoordinator[] = [];
  readonly workerProcesses: ChildWorker[] = [];
  worker: AggregationWorker | null = null;
  private logRedis: Redis | null = null;
  private readonly devices: TestDevice[] = [];

  constructor(label: string) {
    this.prefix = uniquePrefix(label);
    this.keys = redisKeys(this.prefix);
  }

  /** Starts one more coordinator process with `extra` flags. */
  async startCoordinator(extra: string[] = []): Promise<ChildCoordinator> {
    const child = await startCoordinatorProcess({
      redisUrl: this.redisUrl,
      prefix: this.prefix,
      stateDir: this.stateDir,
      operatorToken: OPERATOR_TOKEN,
      args: extra,
    });
    this.coordinators.push(child);
    return child;
  }

  /** An aggregation worker in this process, signing with the coordinators' key, retaining deltas for 1 h. */
  async startWorker(): Promise<AggregationWorker> {
    const signingKey = loadOrCreateCoordinatorKey(this.stateDir);
    this.logRedis = new Redis(redisOptionsFromUrl(this.redisUrl));
    const roundLog = openRoundLog({
      redis: this.logRedis,
      prefix: this.prefix,
      filePath: defaultRoundLogPath(this.stateDir),
      signingKey,
      pseudonymSecret: await loadOrCreatePseudonymSecret(this.stateDir),
      retainDeltas: { ttlMs: 3_600_000 },
    });
    const { startAggregationWorker } = await loadAggregationWorker();
    this.worker = await startAggregationWorker({
      redisUrl: this.redisUrl,
      prefix: this.prefix,
      stateDir: this.stateDir,
      signingKey,
      roundLog,
      useThread: false,
      logger: pino({ level: 'silent' }),
    });
    return this.worker;
  }

  /**
   * A worker process (`coordinator/src/worker/main.ts`) on this cluster's Redis, prefix and state,
   * with `env` added to its environment (e.g. `FLOTILLA_BLOB_STORE`).
   */
  async spawnWorker(env: Record<string, string> = {}): Promise<ChildWorker> {
    const worker = spawnChildWorker({
      ...workerProcessEnv({ redisUrl: this.redisUrl, prefix: this.prefix, stateDir: this.stateDir }),
      ...env,
    });
    this.workerProcesses.push(worker);
    await worker.waitForLog('worker ready');
    return worker;
  }

  /** An operator request to `url` (default: the first coordinator). */
  operator(method: string, path: string, body?: unknown, url = this.url(0)): Promise<Response> {
    return operatorFetch(url, OPERATOR_TOKEN, method, path, body);
  }

  url(index: number): string {
    const child = this.coordinators[index];
    if (!child) throw new Error(`no coordinator ${index}`);
    return child.url;
  }

  /**
   * Uploads a stand-in base model and registers a LoRA task on module `dense` (4 → 3, r = 2)
   * through the operator API, with an audit that never rejects, so outcomes depend on the policy
   * under test only.
   */
  async createTask(
    taskId: string,
    options: {
      rounds?: Partial<TaskDefinitionInput['rounds']>;
      policy?: Partial<TaskDefinitionInput['policy']>;
    } = {},
  ): Promise<void> {
    await createTestTaskOverHttp(this.url(0), OPERATOR_TOKEN, {
      taskId,
      rounds: {
        goalCount: 4,
        overSelection: 1,
        minGoalFraction: 1,
        minReports: 3,
        // Bounds only: the tests' rounds select once every device waits and close once every
        // selected device answered. A 30 s deadline ran out on a loaded machine while a test was
        // still working inside the round (identity-rate-limit's flood), which moved it on.
        selectionTimeoutMs: 300_000,
        reportingDeadlineMs: 300_000,
        ...options.rounds,
      },
      policy: { audit: NEVER_REJECTS, ...options.policy },
    });
  }

  /**
   * Registers devices `<label>-0…` through the operator API and connects each to `url`. They are
   * disconnected in `stop()`.
   */
  async enrollAndConnect(label: string, count: number, url = this.url(0)): Promise<TestDevice[]> {
    const devices = Array.from({ length: count }, (_, i) => new TestDevice(url, `${label}-${i}`));
    for (const d of devices) {
      this.devices.push(d);
      await registerDeviceOverHttp(this.url(0), OPERATOR_TOKEN, d);
      const ack = await d.connect();
      if (!ack.ok) throw new Error(`connect ${d.deviceId}: ${JSON.stringify(ack)}`);
    }
    return devices;
  }

  /** One device `<label>-0`, enrolled and connected to `url` as by {@link enrollAndConnect}. */
  async enrollOne(label: string, url = this.url(0)): Promise<TestDevice> {
    const [device] = await this.enrollAndConnect(label, 1, url);
    if (!device) throw new Error(`no device ${label}`);
    return device;
  }

  /**
   * Waits until round 1 of `taskId` is open for check-ins. The round driver opens it when it hears
   * of the task, which on a loaded machine may come after the registration was answered.
   */
  async firstRoundOpen(taskId: string, timeoutMs = 20_000): Promise<void> {
    await waitFor(
      async () => (await this.redis.hget(this.keys.round(`${taskId}:1`), 'state')) === 'SELECTING',
      timeoutMs,
      `round 1 of ${taskId} in SELECTING`,
    );
  }

  /**
   * Once round 1 of `taskId` is open, checks every one of `devices` in (each is told to wait) and
   * resolves with the plan each of them receives for the round.
   */
  async joinFirstRound(taskId: string, devices: TestDevice[]): Promise<RoundPlan> {
    await this.firstRoundOpen(taskId);
    for (const d of devices)
      expect(await d.checkIn(taskId)).toMatchObject({ ok: true, data: { status: 'waiting' } });
    const [plan] = await Promise.all(devices.map((d) => d.waitForPlan(`${taskId}:1`, 20_000)));
    if (!plan) throw new Error('no device joined');
    return plan;
  }

  async outcome(roundId: string, timeoutMs = 30_000): Promise<RoundOutcome> {
    return waitFor(
      () => readRoundOutcome(this.redis, this.prefix, roundId),
      timeoutMs,
      `outcome of ${roundId}`,
    );
  }

  /** Events of the signed round log (Redis stream), optionally of one round. */
  async events(roundId?: string): Promise<RoundLogEvent[]> {
    const records = await readRoundLog(this.redis, this.prefix);
    return records
      .map((r) => r.event)
      .filter((e) => roundId === undefined || ('roundId' in e && e.roundId === roundId));
  }

  async stop(): Promise<void> {
    for (const device of this.devices) device.disconnect();
    for (const child of this.coordinators) await child.kill();
    for (const worker of this.workerProcesses) await worker.kill();
    await this.worker?.close();
    this.logRedis?.disconnect();
    this.redis.disconnect();
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}
