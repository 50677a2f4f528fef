import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { io, type Socket } from 'socket.io-client';
import {
  PROTOCOL_VERSION,
  SIGNING_DOMAINS,
  encodeFloat32Tensors,
  loraTensorNames,
  sha256Hex,
  signPayload,
  toBase64,
  type Ack,
  type AuthChallenge,
  type AuthResult,
  type CheckIn,
  type RoundClosed,
  type RoundPlan,
  type SigningKeyPair,
  type TaskDefinitionInput,
  type UpdateMetadata,
} from '@flotilla/protocol';
import {
  createCoordinator,
  type Coordinator,
  type CoordinatorOptions,
} from '../../src/server/coordinator.js';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { loadOrCreateCoordinatorKey } from '../../src/shared/coordinator-key.js';
import {
  defaultRoundLogPath,
  loadOrCreatePseudonymSecret,
  openRoundLog,
} from '../../src/shared/round-log/index.js';
import { startAggregationWorker, type AggregationWorker } from '../../src/worker/aggregation-worker.js';
import { testRedisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { PATIENCE_MS } from '../../../test-support/patience.js';

export const MODULE = 'dense';
/** Layer sizes of the test task: a dense layer with 4 inputs and 3 outputs, LoRA rank 2. */
export const SHAPES = { in: 4, out: 3 };
export const RANK = 2;

export interface TestCoordinator {
  coordinator: Coordinator;
  stateDir: string;
  stop(): Promise<void>;
}

export async function startTestCoordinator(
  options: Partial<CoordinatorOptions> = {},
): Promise<TestCoordinator> {
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'flotilla-coord-'));
  const coordinator = await createCoordinator({
    redisUrl: testRedisUrl(),
    prefix: uniquePrefix('coord'),
    operatorToken: 'operator-token-for-tests-0123456789',
    rateLimit: { perSecond: 1000, burst: 2000 },
    ...options,
    stateDir,
  });
  return {
    coordinator,
    stateDir,
    async stop() {
      await coordinator.close();
      rmSync(stateDir, { recursive: true, force: true, maxRetries: 5 });
    },
  };
}

export type RoundsInput = Partial<NonNullable<TaskDefinitionInput['rounds']>>;

export interface TestTaskOptions {
  taskId?: string;
  rounds?: RoundsInput;
  clipNorm?: number;
  maxBlobBytes?: number;
  /** A DP policy (`policy.dp`); none by default. */
  dp?: NonNullable<TaskDefinitionInput['policy']>['dp'];
}

/** The test task: LoRA rank 2 on module `dense` over a stand-in base model, FedAvg, clip 1. */
export function testTaskDefinition(
  base: { digest: string; bytes: number },
  options: TestTaskOptions = {},
): TaskDefinitionInput {
  return {
    taskId: options.taskId ?? 'test-task',
    baseModel: { digest: base.digest, format: 'tfjs-layers-bundle', bytes: base.bytes },
    adapter: { mode: 'lora', targetModules: [MODULE], r: RANK, alpha: 4, seed: 1 },
    moduleShapes: { [MODULE]: SHAPES },
    rounds: {
      goalCount: 3,
      minReports: 2,
      selectionTimeoutMs: 3_000,
      reportingDeadlineMs: 4_000,
      retryAfterMs: 500,
      training: { epochs: 1, batchSize: 8, learningRate: 0.1, fedProxMu: 0, optimizer: 'sgd' },
      ...options.rounds,
    },
    policy: {
      allowedModules: [MODULE],
      clipNorm: options.clipNorm ?? 1,
      maxBlobBytes: options.maxBlobBytes ?? 4096,
      strategy: { name: 'fedavg' },
      audit: {},
      ...(options.dp ? { dp: options.dp } : {}),
    },
    createdAt: Date.now(),
  };
}

/** Uploads a stand-in base model blob and registers a LoRA task on module `dense`. */
export async function createTestTask(coordinator: Coordinator, options: TestTaskOptions = {}) {
  const base = new Uint8Array(randomBytes(256));
  const digest = sha256Hex(base);
  await coordinator.blobs.put(digest, base);
  return coordinator.createTask(testTaskDefinition({ digest, bytes: base.length }, options));
}

/** The same over HTTP, as an operator does it against a coordinator process. */
export async function createTestTaskOverHttp(
  url: string,
  operatorToken: string,
  options: TestTaskOptions = {},
): Promise<void> {
  const base = new Uint8Array(randomBytes(256));
  const digest = sha256Hex(base);
  const put = await fetch(`${url}/blobs/${digest}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${operatorToken}` },
    body: base,
  });
  if (put.status !== 201) throw new Error(`base upload: ${put.status} ${await put.text()}`);
  const task = testTaskDefinition({ digest, bytes: base.length }, options);
  const created = await operatorFetch(url, operatorToken, 'POST', '/api/admin/tasks', task);
  if (created.status !== 201) throw new Error(`task: ${created.status} ${await created.text()}`);
}

/** A request to the operator API of the coordinator at `url`, with a JSON body. */
export function operatorFetch(
  url: string,
  operatorToken: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  return fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

/** Registers a device through the operator API (`POST /api/admin/devices`); throws unless accepted. */
export async function registerDeviceOverHttp(
  url: string,
  operatorToken: string,
  device: { deviceId: string; publicKey: string },
): Promise<void> {
  const { deviceId, publicKey } = device;
  const res = await operatorFetch(url, operatorToken, 'POST', '/api/admin/devices', { deviceId, publicKey });
  if (res.status >= 300) throw new Error(`register ${deviceId}: ${res.status} ${await res.text()}`);
}

/**
 * Enrollment as a fleet does it over HTTP: the operator mints a one-time token on the coordinator
 * at `url`, and the device presents it with its key at `enrollUrl` (default: the same one).
 */
export async function enrollWithToken(options: {
  url: string;
  operatorToken: string;
  device: { deviceId: string; publicKey: string };
  enrollUrl?: string;
}): Promise<{ token: string; enrolled: Response }> {
  const minted = await operatorFetch(
    options.url,
    options.operatorToken,
    'POST',
    '/api/admin/enrollment-tokens',
    {
      ttlMs: 60_000,
    },
  );
  const { token } = (await minted.json()) as { token: string };
  const enrolled = await presentEnrollmentToken(options.enrollUrl ?? options.url, token, options.device);
  return { token, enrolled };
}

/** `POST /api/enroll` with a one-time token and the device's id and key. */
export function presentEnrollmentToken(
  url: string,
  token: string,
  device: { deviceId: string; publicKey: string },
): Promise<Response> {
  return fetch(`${url}/api/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, deviceId: device.deviceId, publicKey: device.publicKey }),
  });
}

/**
 * An in-process aggregation worker for a coordinator (process) on `stateDir`: same key, same
 * pseudonym secret, appending to the same signed round log.
 */
export async function startRoundLogWorker(options: {
  redis: Redis;
  prefix: string;
  stateDir: string;
}): Promise<AggregationWorker> {
  const signingKey = loadOrCreateCoordinatorKey(options.stateDir);
  return startAggregationWorker({
    redisUrl: testRedisUrl(),
    prefix: options.prefix,
    stateDir: options.stateDir,
    signingKey,
    roundLog: openRoundLog({
      redis: options.redis,
      prefix: options.prefix,
      filePath: defaultRoundLogPath(options.stateDir),
      signingKey,
      pseudonymSecret: await loadOrCreatePseudonymSecret(options.stateDir),
    }),
    useThread: false,
  });
}

/**
 * A LoRA delta for the test task whose global L2 norm is exactly `norm`: every one of the
 * n = r·in + out·r values is norm/√n, so Σx² = norm² (up to f32 rounding of each value).
 */
export function loraDelta(
  norm: number,
  extra: Map<string, { shape: number[]; values: Float32Array }> = new Map(),
) {
  const names = loraTensorNames(MODULE);
  const n = RANK * SHAPES.in + SHAPES.out * RANK;
  const v = norm / Math.sqrt(n);
  const tensors = new Map([
    [names.a, { shape: [RANK, SHAPES.in], values: new Float32Array(RANK * SHAPES.in).fill(v) }],
    [names.b, { shape: [SHAPES.out, RANK], values: new Float32Array(SHAPES.out * RANK).fill(v) }],
    ...extra,
  ]);
  return encodeFloat32Tensors(tensors);
}

export const ELIGIBLE: Omit<CheckIn, 'taskId'> = {
  eligibility: { charging: true, unmeteredNetwork: true, freeStorageBytes: 1e9, computeClass: 'medium' },
  budget: { maxSeconds: 60, maxBytes: 1e7 },
  adapterVersion: 0,
};

/** A device written from docs/protocol.md: tweetnacl keys, socket.io-client, fetch. */
export class TestDevice {
  socket: Socket | null = null;
  session: AuthResult | null = null;
  readonly plans: RoundPlan[] = [];
  readonly closed: RoundClosed[] = [];
  readonly errors: unknown[] = [];

  constructor(
    readonly url: string,
    readonly deviceId: string,
    /** The device's identity; pass another device's keys to open a second connection as it. */
    readonly keys: SigningKeyPair = nacl.sign.keyPair(),
  ) {}

  get publicKey(): string {
    return toBase64(this.keys.publicKey);
  }

  /**
   * Connects and answers the challenge (with `signWith` = another key to forge). `transports`:
   * default `['websocket']`; `null` leaves socket.io-client's own default (polling, then upgrade).
   */
  async connect(
    options: {
      signWith?: Uint8Array;
      reconnection?: boolean;
      transports?: Array<'polling' | 'websocket'> | null;
    } = {},
  ): Promise<Ack<AuthResult>> {
    const transports = options.transports === undefined ? ['websocket'] : options.transports;
    const socket = io(this.url, {
      auth: { deviceId: this.deviceId, protocolVersion: PROTOCOL_VERSION },
      ...(transports === null ? {} : { transports }),
      reconnection: options.reconnection ?? false,
      reconnectionDelay: 200,
      reconnectionDelayMax: 500,
    });
    this.socket = socket;
    socket.on('round:plan', (plan: RoundPlan) => this.plans.push(plan));
    socket.on('round:closed', (c: RoundClosed) => this.closed.push(c));
    socket.on('error', (e: unknown) => this.errors.push(e));
    const challengeAndAnswer = (challenge: AuthChallenge) =>
      socket.timeout(PATIENCE_MS).emitWithAck('auth:response', {
        signature: signPayload(
          SIGNING_DOMAINS.authChallenge,
          { deviceId: this.deviceId, nonce: challenge.nonce, coordinatorKey: challenge.coordinatorKey },
          options.signWith ?? this.keys.secretKey,
        ),
      }) as Promise<Ack<AuthResult>>;
    const result = await new Promise<Ack<AuthResult>>((resolve, reject) => {
      socket.on('auth:challenge', (challenge: AuthChallenge) => {
        challengeAndAnswer(challenge).then((ack) => {
          if (ack.ok) this.session = ack.data;
          resolve(ack);
        }, reject);
      });
      socket.once('connect_error', (error: Error & { data?: unknown }) => {
        resolve({
          ok: false,
          error: (error.data as { code: string; message: string } | undefined) ?? {
            code: 'CONNECT',
            message: error.message,
          },
        });
      });
    });
    return result;
  }

  async emit<T = unknown>(event: string, payload: unknown): Promise<Ack<T>> {
    if (!this.socket) throw new Error('not connected');
    return (await this.socket.timeout(PATIENCE_MS).emitWithAck(event, payload)) as Ack<T>;
  }

  checkIn(taskId: string) {
    return this.emit<{ status: string }>('checkin', { taskId, ...ELIGIBLE });
  }

  async waitForPlan(roundId?: string, timeoutMs = PATIENCE_MS): Promise<RoundPlan> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const plan = this.plans.find((p) => roundId === undefined || p.roundId === roundId);
      if (plan) return plan;
      if (Date.now() > deadline) throw new Error(`${this.deviceId}: no plan`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async upload(bytes: Uint8Array, digest = sha256Hex(bytes)): Promise<Response> {
    return fetch(`${this.url}/blobs/${digest}`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${this.session?.sessionToken ?? ''}`,
        'content-type': 'application/octet-stream',
      },
      body: Buffer.from(bytes),
    });
  }

  metadata(plan: RoundPlan, bytes: Uint8Array, overrides: Partial<UpdateMetadata> = {}): UpdateMetadata {
    return {
      protocolVersion: PROTOCOL_VERSION,
      taskId: plan.taskId,
      roundId: plan.roundId,
      nonce: plan.nonce,
      deviceId: this.deviceId,
      blobDigest: sha256Hex(bytes),
      blobBytes: bytes.length,
      adapterVersion: plan.adapter.version,
      numExamples: 10 + Number(this.deviceId.replace(/\D/g, '') || 0),
      reportedNorm: 0.5,
      clipped: false,
      quantization: 'none',
      telemetry: {
        trainingMs: 10,
        steps: 1,
        examples: 10,
        stepsPerSecond: 100,
        bytesUp: bytes.length,
        bytesDown: 0,
        estimatedEnergyJ: 0.1,
        backend: 'cpu',
      },
      createdAt: Date.now(),
      ...overrides,
    };
  }

  submit(metadata: UpdateMetadata, secretKey: Uint8Array = this.keys.secretKey) {
    return this.emit<{ norm: number; roundId: string }>('update:submit', {
      metadata,
      signature: signPayload(SIGNING_DOMAINS.update, metadata, secretKey),
    });
  }

  /** Uploads `bytes` and submits them for `plan`. */
  async report(plan: RoundPlan, bytes: Uint8Array, overrides: Partial<UpdateMetadata> = {}) {
    const res = await this.upload(bytes);
    if (res.status !== 201 && res.status !== 200)
      throw new Error(`upload failed: ${res.status} ${await res.text()}`);
    return this.submit(this.metadata(plan, bytes, overrides));
  }

  disconnect(): void {
    this.socket?.disconnect();
  }
}

/** Enrolls `count` devices by operator registration and connects them. */
export interface TestFleetOptions {
  /** Options of the coordinator ({@link startTestCoordinator}). */
  coordinator?: Partial<CoordinatorOptions>;
  /** The test task ({@link createTestTask}); registered before the devices connect unless `taskAfterDevices`. */
  task?: TestTaskOptions;
  taskAfterDevices?: boolean;
  /** Devices enrolled and connected ({@link connectFleet}), ids `<label>-0…`. Default 0. */
  devices?: number;
  label?: string;
}

export interface TestFleet {
  readonly tc: TestCoordinator;
  readonly devices: TestDevice[];
}

/**
 * A coordinator, the test task and connected devices for the tests of one describe block: started
 * before them, devices disconnected and the coordinator stopped after them. Its after hook runs
 * after the block's own (vitest runs after hooks in reverse order).
 */
export function useTestFleet(options: TestFleetOptions = {}): TestFleet {
  let started: { tc: TestCoordinator; devices: TestDevice[] } | null = null;
  beforeAll(async () => {
    const tc = await startTestCoordinator(options.coordinator);
    const connect = () => connectFleet(tc.coordinator, options.devices ?? 0, options.label);
    const early = options.taskAfterDevices ? await connect() : null;
    await createTestTask(tc.coordinator, options.task);
    started = { tc, devices: early ?? (await connect()) };
  });
  afterAll(async () => {
    for (const d of started?.devices ?? []) d.disconnect();
    await started?.tc.stop();
  });
  const running = () => {
    if (!started) throw new Error('the test fleet starts in beforeAll');
    return started;
  };
  return {
    get tc() {
      return running().tc;
    },
    get devices() {
      return running().devices;
    },
  };
}

export async function connectFleet(
  coordinator: Coordinator,
  count: number,
  label = 'dev',
): Promise<TestDevice[]> {
  const devices = Array.from({ length: count }, (_, i) => new TestDevice(coordinator.url, `${label}-${i}`));
  for (const d of devices)
    await coordinator.devices.registerDevice({ deviceId: d.deviceId, publicKey: d.publicKey });
  const acks = await Promise.all(devices.map((d) => d.connect()));
  for (const ack of acks) if (!ack.ok) throw new Error(`connect failed: ${JSON.stringify(ack)}`);
  return devices;
}

export async function waitFor<T>(
  probe: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  timeoutMs = PATIENCE_MS,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
