// A coordinator child process (coordinator/src/server/main.ts) on the test Redis, set up over
// HTTP the way an operator would: base model uploaded, task registered, devices registered and
// connected as protocol-level TestDevices. For tests that attack a real coordinator process.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import {
  SignedManifestSchema,
  sha256Hex,
  type AdapterManifest,
  type RoundPlan,
  type TaskDefinitionInput,
} from '@flotilla/protocol';
import { uniquePrefix } from '../../../test-support/redis.js';
import { startCoordinatorProcess, type ChildCoordinator } from './child-coordinator.js';
import { MODULE, RANK, SHAPES } from './test-task.js';
import { TestDevice } from './test-device.js';
import { waitFor } from './wait-for.js';

export const CHILD_OPERATOR = 'operator-token-for-child-fleet-0123';
export const CHILD_AUDITOR = 'auditor-token-for-child-fleet-01234';

export interface ChildFleet {
  coordinator: ChildCoordinator;
  url: string;
  prefix: string;
  stateDir: string;
  /** A request with the operator's bearer token. */
  operator(path: string, init?: RequestInit): Promise<Response>;
  /** Uploads a base model and registers a LoRA task on module `dense` (one round at a time). */
  createTask(options?: ChildTaskOptions): Promise<{ taskId: string; baseDigest: string }>;
  /** Registers and connects devices `<label>-0` … over the operator API. */
  connectDevices(count: number, label?: string): Promise<TestDevice[]>;
  /** Checks the devices in to the task and waits for each one's plan. */
  select(devices: TestDevice[], taskId: string): Promise<RoundPlan[]>;
  /** Resident set size (`VmRSS`) and its high-water mark (`VmHWM`) of the child, bytes. */
  memory(): { rss: number; peak: number };
  stop(): Promise<void>;
}

export interface ChildTaskOptions {
  taskId?: string;
  /** Devices selected per round. Default 3. */
  goalCount?: number;
  maxBlobBytes?: number;
  baseBytes?: number;
  policy?: Partial<TaskDefinitionInput['policy']>;
}

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match?.[1]) throw new Error(`no ${field} for pid ${pid}`);
  return Number(match[1]) * 1024;
}

export interface ChildFleetOptions {
  /** More flags for main.ts. */
  extraArgs?: string[];
  /** A second coordinator process of this fleet: same Redis prefix and state directory (key). */
  join?: ChildFleet;
}

export async function startChildFleet(options: ChildFleetOptions = {}): Promise<ChildFleet> {
  const extraArgs = options.extraArgs ?? [];
  const prefix = options.join?.prefix ?? uniquePrefix('child-fleet');
  const ownsDir = options.join === undefined;
  const stateDir = options.join?.stateDir ?? mkdtempSync(join(tmpdir(), 'flotilla-child-fleet-'));
  const devices: TestDevice[] = [];
  let coordinator: ChildCoordinator;
  try {
    coordinator = await startCoordinatorProcess({
      prefix,
      stateDir,
      operatorToken: CHILD_OPERATOR,
      args: ['--auditor-token', CHILD_AUDITOR, ...extraArgs],
    });
  } catch (error) {
    if (ownsDir) rmSync(stateDir, { recursive: true, force: true });
    throw error;
  }
  const url = coordinator.url;
  const operator = (path: string, init: RequestInit = {}) =>
    fetch(`${url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${CHILD_OPERATOR}`, ...(init.headers as Record<string, string>) },
    });
  return {
    coordinator,
    url,
    prefix,
    stateDir,
    operator,
    async createTask(options = {}) {
      const taskId = options.taskId ?? 'child-task';
      const base = new Uint8Array(randomBytes(options.baseBytes ?? 300));
      const baseDigest = sha256Hex(base);
      const put = await operator(`/blobs/${baseDigest}`, { method: 'PUT', body: base });
      expect(put.status).toBe(201);
      const goalCount = options.goalCount ?? 3;
      const created = await operator('/api/admin/tasks', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          taskId,
          baseModel: { digest: baseDigest, format: 'tfjs-layers-bundle', bytes: base.length },
          adapter: { mode: 'lora', targetModules: [MODULE], r: RANK, alpha: 4, seed: 1 },
          moduleShapes: { [MODULE]: SHAPES },
          rounds: {
            goalCount,
            overSelection: 1,
            minGoalFraction: 1,
            minReports: 1,
            selectionTimeoutMs: 30_000,
            reportingDeadlineMs: 60_000,
            training: { epochs: 1, batchSize: 8, learningRate: 0.1, fedProxMu: 0, optimizer: 'sgd' },
          },
          policy: {
            allowedModules: [MODULE],
            clipNorm: 1,
            maxBlobBytes: options.maxBlobBytes ?? 4096,
            strategy: { name: 'fedavg' },
            audit: {},
            ...options.policy,
          },
          createdAt: Date.now(),
        }),
      });
      expect(created.status).toBe(201);
      return { taskId, baseDigest };
    },
    async connectDevices(count, label = 'cd') {
      const made: TestDevice[] = [];
      for (let i = 0; i < count; i++) {
        const device = new TestDevice(url, `${label}-${i}`);
        const registered = await operator('/api/admin/devices', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ deviceId: device.deviceId, publicKey: device.publicKey }),
        });
        expect(registered.status).toBe(201);
        const ack = await device.connect();
        expect(ack.ok).toBe(true);
        devices.push(device);
        made.push(device);
      }
      return made;
    },
    async select(selected, taskId) {
      const acks = await Promise.all(selected.map((d) => d.checkIn(taskId)));
      for (const ack of acks) expect(ack.ok).toBe(true);
      return Promise.all(selected.map((d) => d.waitForPlan(undefined, 20_000)));
    },
    memory() {
      return { rss: statusKiB(coordinator.pid, 'VmRSS'), peak: statusKiB(coordinator.pid, 'VmHWM') };
    },
    async stop() {
      for (const d of devices) d.disconnect();
      await coordinator.kill();
      if (ownsDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/**
 * Waits (up to 40 s) for the worker to promote `version` of the task; returns its manifest and the
 * digests of every artifact it lists (full adapter, delta, adapter config).
 */
export async function waitForPromotion(
  url: string,
  taskId: string,
  version: number,
): Promise<{ manifest: AdapterManifest; artifacts: string[] }> {
  const res = await waitFor(
    async () => {
      const answer = await fetch(`${url}/api/tasks/${taskId}/adapters/${version}/manifest`);
      return answer.status === 200 ? answer : null;
    },
    40_000,
    `version ${version} of ${taskId} promoted`,
  );
  const { manifest } = SignedManifestSchema.parse(await res.json());
  const sets = [manifest.adapter, ...(manifest.delta ? [manifest.delta] : [])];
  const artifacts = [
    ...sets.flatMap((set) => [set.f32.digest, set.f16.digest, ...(set.int8 ? [set.int8.digest] : [])]),
    manifest.adapterConfigDigest,
  ];
  return { manifest, artifacts };
}
