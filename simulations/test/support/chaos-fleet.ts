import { randomBytes } from 'node:crypto';
import {
  generateSigningKeyPair,
  loraTensorNames,
  toBase64,
  sha256Hex,
  type RoundPlan,
  type SignedTreeHead,
  type SigningKeyPair,
  type TaskDefinitionInput,
} from '@flotilla/protocol';
import {
  FlotillaDevice,
  MemoryBlobCache,
  type TrainContext,
  type TrainOutcome,
  type Trainer,
} from '@flotilla/client';
import type { Redis } from 'ioredis';
import type { Coordinator } from '@flotilla/coordinator/server';
import type { RoundLogWriter } from '@flotilla/coordinator/shared';
import { startAggregationWorker, type AggregationWorker } from '@flotilla/coordinator/worker';
import { freePort } from '../../../coordinator/test/support/child-coordinator.js';
// The chaos task's only adapted layer is the coordinator tests' one: 4 inputs, 3 outputs, LoRA rank 2.
import { MODULE, RANK, SHAPES } from '../../../coordinator/test/support/test-task.js';
import { testRedisUrl } from '../../../test-support/redis.js';
import { openStateDirRoundLog } from './run-log.js';

// Real devices (FlotillaDevice) with a trainer that needs no tfjs: the fault tests exercise the
// protocol, reconnection and durability, not learning.

export const OPERATOR = 'operator-token-for-chaos-tests-0123456789';

/** A stand-in base model: the trainer below never reads it, devices only verify its digest. */
export function baseBlob(): { bytes: Uint8Array; digest: string } {
  const bytes = new Uint8Array(randomBytes(256));
  return { bytes, digest: sha256Hex(bytes) };
}

export function chaosTask(
  taskId: string,
  base: { bytes: Uint8Array; digest: string },
  rounds: Partial<NonNullable<TaskDefinitionInput['rounds']>>,
): TaskDefinitionInput {
  return {
    taskId,
    baseModel: { digest: base.digest, format: 'tfjs-layers-bundle', bytes: base.bytes.length },
    adapter: { mode: 'lora', targetModules: [MODULE], r: RANK, alpha: 4, seed: 3 },
    moduleShapes: { [MODULE]: SHAPES },
    rounds: {
      goalCount: 4,
      overSelection: 1,
      minReports: 3,
      selectionTimeoutMs: 20_000,
      reportingDeadlineMs: 30_000,
      retryAfterMs: 300,
      training: { epochs: 1, batchSize: 8, learningRate: 0.1, fedProxMu: 0, optimizer: 'sgd' },
      ...rounds,
    },
    policy: {
      allowedModules: [MODULE],
      clipNorm: 1,
      maxBlobBytes: 4096,
      strategy: { name: 'fedavg' },
      audit: {},
    },
    createdAt: Date.now(),
  };
}

/**
 * Where a chaos test registers its task and devices: a coordinator process, as its operator does
 * over HTTP, or a coordinator in the test's own process.
 */
export type ChaosTarget = { url: string } | Pick<Coordinator, 'blobs' | 'createTask' | 'devices'>;

/** An operator request to a coordinator process; throws unless it is accepted. */
async function operatorRequest(url: string, method: string, path: string, body: BodyInit, json = true) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${OPERATOR}`, ...(json ? { 'content-type': 'application/json' } : {}) },
    body,
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
}

/** Stores a stand-in base model on `target` and registers the chaos task with these rounds. */
export async function registerTask(
  target: ChaosTarget,
  taskId: string,
  rounds: Partial<NonNullable<TaskDefinitionInput['rounds']>>,
): Promise<void> {
  const base = baseBlob();
  const task = chaosTask(taskId, base, rounds);
  if ('url' in target) {
    await operatorRequest(target.url, 'PUT', `/blobs/${base.digest}`, Buffer.from(base.bytes), false);
    await operatorRequest(target.url, 'POST', '/api/admin/tasks', JSON.stringify(task));
    return;
  }
  await target.blobs.put(base.digest, base.bytes);
  await target.createTask(task);
}

/** Registers device `deviceId` on `target` with `keys` (default: a fresh pair), and returns them. */
export async function registerDevice(
  target: ChaosTarget,
  deviceId: string,
  keys: SigningKeyPair = newKeys(),
): Promise<SigningKeyPair> {
  const device = { deviceId, publicKey: toBase64(keys.publicKey) };
  if ('url' in target)
    await operatorRequest(target.url, 'POST', '/api/admin/devices', JSON.stringify(device));
  else await target.devices.registerDevice(device);
  return keys;
}

/**
 * An in-process aggregation worker beside the coordinator on `stateDir`: it signs with the
 * coordinator's key and appends (through `redis`) to the same round log, with the same pseudonyms.
 */
export async function startChaosWorker(options: {
  /** The Redis of the coordinator, for the worker's queue. */
  redisUrl: string;
  redis: Redis;
  prefix: string;
  stateDir: string;
  signingKey: SigningKeyPair;
}): Promise<{ worker: AggregationWorker; roundLog: RoundLogWriter }> {
  const { redisUrl, redis, prefix, stateDir, signingKey } = options;
  const roundLog = await openStateDirRoundLog({ redis, prefix, stateDir, signingKey });
  const worker = await startAggregationWorker({
    ...{ redisUrl, prefix, stateDir, signingKey, roundLog },
    useThread: false,
  });
  return { worker, roundLog };
}

/** Stops the devices, then the worker: before the coordinator and the Redis they use go away. */
export async function stopDevicesAndWorker(
  devices: Iterable<ChaosDevice>,
  worker: AggregationWorker | null,
): Promise<void> {
  for (const d of devices) d.device.stop();
  await worker?.close();
}

/**
 * The arguments of a coordinator process (`startChildCoordinator`) on the test Redis under
 * `prefix`, keeping its state in `stateDir`, on a free port, with the chaos operator token.
 */
export async function coordinatorProcessArgs(prefix: string, stateDir: string): Promise<string[]> {
  return [
    ...['--redis-url', testRedisUrl(), '--prefix', prefix, '--state-dir', stateDir],
    ...['--port', String(await freePort()), '--operator-token', OPERATOR],
  ];
}

export interface FastTrainerOptions {
  /** Distinguishes the devices' deltas. */
  index: number;
  /** Multiplies the delta: device 0's passes the clip bound 1 from 54 on (a device must turn clipping off to send it). Default 1. */
  scale?: number;
  /** Awaited before training (e.g. held until the coordinator was restarted). */
  before?: (plan: RoundPlan) => Promise<void>;
  /** Returns true when the device should vanish in this round (it is then stopped by `onDrop`). */
  dropsOut?: (plan: RoundPlan) => boolean;
  onDrop?: (plan: RoundPlan) => void;
}

/** A LoRA delta of norm ≈ 0.0187·(index+1)·scale (every value ±0.005·(index+1)·scale, 14 values) in a few microseconds. */
export class FastTrainer implements Trainer {
  constructor(private readonly options: FastTrainerOptions) {}

  async train(plan: RoundPlan, context: TrainContext): Promise<TrainOutcome> {
    await this.options.before?.(plan);
    if (this.options.dropsOut?.(plan)) {
      this.options.onDrop?.(plan);
      // Gone: no update, no skip. The device's stop (or the deadline) aborts the signal.
      await new Promise<void>((resolve) => {
        if (context.signal.aborted) resolve();
        context.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      return { kind: 'skip', reason: 'error', detail: 'dropped out' };
    }
    const names = loraTensorNames(MODULE);
    const v = 0.005 * (this.options.index + 1) * (this.options.scale ?? 1);
    return {
      kind: 'update',
      delta: new Map([
        [names.a, { shape: [RANK, SHAPES.in], values: new Float32Array(RANK * SHAPES.in).fill(v) }],
        [names.b, { shape: [SHAPES.out, RANK], values: new Float32Array(SHAPES.out * RANK).fill(-v) }],
      ]),
      numExamples: 10 + this.options.index,
      steps: 1,
    };
  }
}

/** What one device saw, for assertions. */
export interface DeviceRecord {
  accepted: string[];
  refused: Array<{ roundId: string; code: string }>;
  authentications: number;
  errors: string[];
  /** The transport of each connection, then of each upgrade, in order (`polling`, `websocket`). */
  transports: string[];
  /** Each answered update's check against the round log (`onInclusionChecked`; `refusal`: null when accepted). */
  inclusion: Array<{
    roundId: string;
    refusal: string | null;
    ok: boolean;
    detail: string;
    head: SignedTreeHead | null;
  }>;
}

export interface ChaosDevice {
  id: string;
  keys: SigningKeyPair;
  device: FlotillaDevice;
  record: DeviceRecord;
}

/** Starts a FlotillaDevice (in-memory cache, fast reconnects) recording what it experiences. */
export async function startChaosDevice(options: {
  url: string;
  id: string;
  keys: SigningKeyPair;
  taskId: string;
  trainer: Trainer;
  record?: DeviceRecord;
  /** socket.io transports; default: the client's own (polling, then upgrade). */
  transports?: Array<'polling' | 'websocket'>;
  /** `off` for a device that sends its delta unclipped. Default: the client's (`enforce`). */
  clipping?: 'enforce' | 'off';
}): Promise<ChaosDevice> {
  const record: DeviceRecord = options.record ?? {
    accepted: [],
    refused: [],
    authentications: 0,
    errors: [],
    transports: [],
    inclusion: [],
  };
  const device = new FlotillaDevice({
    url: options.url,
    deviceId: options.id,
    keys: options.keys,
    taskId: options.taskId,
    trainer: options.trainer,
    cache: new MemoryBlobCache(),
    ackTimeoutMs: 3000,
    reconnectDelayMs: 250,
    planWaitMs: 5000,
    retry: { attempts: 8, baseDelayMs: 100, maxDelayMs: 1000 },
    ...(options.transports ? { transports: options.transports } : {}),
    ...(options.clipping ? { clipping: options.clipping } : {}),
    logger: {
      debug: () => undefined,
      info: (fields, message) => {
        if (message === 'authenticated') record.authentications++;
        if (
          (message === 'connected' || message === 'transport upgraded') &&
          typeof fields.transport === 'string'
        )
          record.transports.push(fields.transport);
      },
      warn: () => undefined,
      error: (fields, message) => record.errors.push(JSON.stringify({ message, ...fields })),
    },
    onUpdateAccepted: ({ plan }) => record.accepted.push(plan.roundId),
    onUpdateRefused: ({ plan, code }) => record.refused.push({ roundId: plan.roundId, code }),
    onInclusionChecked: (checked) =>
      record.inclusion.push({
        roundId: checked.plan.roundId,
        refusal: checked.refusal,
        ok: checked.ok,
        detail: checked.ok ? `leaf ${checked.leafIndex}` : checked.reason,
        head: checked.ok ? checked.head : null,
      }),
  });
  await device.start();
  return { id: options.id, keys: options.keys, device, record };
}

export function newKeys(): SigningKeyPair {
  return generateSigningKeyPair();
}

export async function waitUntil<T>(
  probe: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
