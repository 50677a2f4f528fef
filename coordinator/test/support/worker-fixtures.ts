// Fixtures for the aggregation-worker integration tests: a fake dense base model (no tfjs),
// tasks, deltas in a LocalDirBlobStore, an in-memory round log that validates every event, and
// the job processor's dependencies on a unique Redis prefix.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import {
  RoundLogEventSchema,
  decodeFloat32Tensors,
  encodeBaseBundle,
  encodeFloat32Tensors,
  generateSigningKeyPair,
  globalL2Norm,
  initialAdapterTensors,
  sha256Hex,
  type AdapterSpec,
  type NamedTensor,
  type RoundLogEvent,
  type RoundLogEventOf,
  type SigningKeyPair,
  type TaskDefinitionInput,
} from '@flotilla/protocol';
import { AdapterRegistry } from '../../src/shared/adapter-registry.js';
import { loadOrCreateCoordinatorKey } from '../../src/shared/coordinator-key.js';
import { LocalDirBlobStore, type BlobStore } from '../../src/shared/blob-store/index.js';
import type { AggregateJobData, AggregateUpdateRef } from '../../src/shared/queues.js';
import { redisOptionsFromUrl } from '../../src/shared/redis-connection.js';
import { TaskRegistry } from '../../src/shared/task-registry.js';
import type { RoundOutcome } from '../../src/shared/round-outcomes.js';
import type { AggregateJobDeps } from '../../src/worker/job/round-context.js';
import { workerRoundLog, type RoundLogAppender } from '../../src/worker/job/worker-round-log.js';
import { seededRandom } from '../../src/worker/strategies/test-random.js';
import { loadAggregateJob } from './lazy-modules.js';
import { testRedisUrl, uniquePrefix } from '../../../test-support/redis.js';

export type TensorMap = Map<string, NamedTensor>;

/** Round-log appender that keeps events in memory after validating each with the protocol schema. */
export class MemoryRoundLog implements RoundLogAppender {
  readonly events: RoundLogEvent[] = [];
  append(event: RoundLogEvent): Promise<unknown> {
    const parsed = RoundLogEventSchema.parse(event);
    this.events.push(parsed);
    return Promise.resolve(parsed);
  }
  ofType<T extends RoundLogEvent['type']>(type: T): Array<Extract<RoundLogEvent, { type: T }>> {
    return this.events.filter((e): e is Extract<RoundLogEvent, { type: T }> => e.type === type);
  }
}

/**
 * A tfjs-layers-bundle of a fake dense model: for each module `<m>/kernel` [in, out] and
 * `<m>/bias` [out], float32, every kernel entry `kernelValue` and every bias entry `biasValue`.
 */
export function fakeBaseBundle(options: {
  modules: Record<string, { in: number; out: number }>;
  kernelValue?: number;
  biasValue?: number;
}): Uint8Array {
  const weightSpecs: Array<{ name: string; shape: number[]; dtype: 'float32' }> = [];
  const chunks: Float32Array[] = [];
  for (const [module, shape] of Object.entries(options.modules)) {
    weightSpecs.push({ name: `${module}/kernel`, shape: [shape.in, shape.out], dtype: 'float32' });
    chunks.push(new Float32Array(shape.in * shape.out).fill(options.kernelValue ?? 0.5));
    weightSpecs.push({ name: `${module}/bias`, shape: [shape.out], dtype: 'float32' });
    chunks.push(new Float32Array(shape.out).fill(options.biasValue ?? 1));
  }
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const all = new Float32Array(total);
  let offset = 0;
  for (const c of chunks) {
    all.set(c, offset);
    offset += c.length;
  }
  return encodeBaseBundle({
    modelTopology: { class_name: 'Sequential', config: { name: 'fake-dense' } },
    weightSpecs,
    weightData: new Uint8Array(all.buffer),
  });
}

export interface WorkerTestEnv {
  redis: Redis;
  prefix: string;
  dir: string;
  blobs: LocalDirBlobStore;
  signingKey: SigningKeyPair;
  tasks: TaskRegistry;
  adapters: AdapterRegistry;
  log: MemoryRoundLog;
  deps: AggregateJobDeps;
  /** {@link registerWorkerTask} in this environment. */
  createTask(options: WorkerTaskOptions): ReturnType<typeof registerWorkerTask>;
  /** {@link storeDelta} in this environment's blob store. */
  storeDelta(delta: TensorMap, ref: UpdateRefOptions): Promise<AggregateUpdateRef>;
  /**
   * The job processor on the round's job data ({@link jobData}) with this environment's
   * dependencies, as enqueued at `enqueuedAt`; the same round again is a retry of the same job.
   */
  runJob(round: JobDataOptions, enqueuedAt: number): Promise<RoundOutcome>;
  /** The float32 tensors stored under `digest`; throws when the blob is missing. */
  blobTensors(digest: string): Promise<TensorMap>;
  /** The tensors of `taskId`'s promoted adapter `version` (its f32 file); throws when there is none. */
  adapterTensors(taskId: string, version: number): Promise<TensorMap>;
  close(): void;
}

export interface WorkerTestEnvOptions {
  noiseSeed?: string;
  dir?: string;
  signingKey?: SigningKeyPair;
}

/** A fresh prefix, temp blob dir and in-process job dependencies (math in-process, no thread). */
export function workerTestEnv(label: string, options: WorkerTestEnvOptions = {}): WorkerTestEnv {
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  const prefix = uniquePrefix(label);
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), `flotilla-${label}-`));
  const blobs = new LocalDirBlobStore({ dir: join(dir, 'blobs') });
  const signingKey = options.signingKey ?? generateSigningKeyPair();
  const tasks = new TaskRegistry({ redis, prefix, signingKey });
  const adapters = new AdapterRegistry({ redis, prefix });
  const log = new MemoryRoundLog();
  const blobTensors = async (digest: string): Promise<TensorMap> => {
    const bytes = await blobs.get(digest);
    if (!bytes) throw new Error(`blob ${digest} missing`);
    return decodeFloat32Tensors(bytes).tensors;
  };
  const deps: AggregateJobDeps = {
    redis,
    prefix,
    blobs,
    tasks,
    adapters,
    signingKey,
    roundLog: workerRoundLog(log),
    ...(options.noiseSeed !== undefined ? { noiseSeed: options.noiseSeed } : {}),
  };
  return {
    redis,
    prefix,
    dir,
    blobs,
    signingKey,
    tasks,
    adapters,
    log,
    deps,
    createTask: (task) => registerWorkerTask({ blobs, tasks }, task),
    storeDelta: (delta, ref) => storeDelta(blobs, delta, ref),
    async runJob(round, enqueuedAt) {
      const { processAggregateJob } = await loadAggregateJob();
      return processAggregateJob(jobData(round), deps, enqueuedAt);
    },
    blobTensors,
    async adapterTensors(taskId, version) {
      const signed = await adapters.getManifest(taskId, version);
      if (!signed) throw new Error(`${taskId} has no adapter version ${version}`);
      return blobTensors(signed.manifest.adapter.f32.digest);
    },
    close() {
      redis.disconnect();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface WorkerTaskOptions {
  taskId: string;
  adapter: AdapterSpec;
  modules: Record<string, { in: number; out: number }>;
  goalCount?: number;
  minReports?: number;
  clipNorm?: number;
  strategy?: TaskDefinitionInput['policy']['strategy'];
  dp?: TaskDefinitionInput['policy']['dp'];
  audit?: TaskDefinitionInput['policy']['audit'];
  weighting?: TaskDefinitionInput['policy']['weighting'];
  kernelValue?: number;
  biasValue?: number;
}

/**
 * A worker test environment in a fresh state directory that worker processes can share (`dir`):
 * its blob store is `<dir>/blobs` and the coordinator key is kept there, as a worker process
 * reads them. Closing it and removing the directory are pushed onto `cleanups`.
 */
export function stateDirWorkerEnv(label: string, cleanups: Array<() => Promise<void> | void>): WorkerTestEnv {
  const stateDir = mkdtempSync(join(tmpdir(), `flotilla-${label}-`));
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const env = workerTestEnv(label, { dir: stateDir, signingKey: loadOrCreateCoordinatorKey(stateDir) });
  cleanups.push(() => env.close());
  return env;
}

/**
 * Worker test environments closed after the file's tests: call once at the top of a test file,
 * then open one per test with the returned function.
 */
export function workerTestEnvs(): (label: string, options?: WorkerTestEnvOptions) => WorkerTestEnv {
  const opened: WorkerTestEnv[] = [];
  afterAll(() => {
    for (const env of opened.splice(0)) env.close();
  });
  return (label, options) => {
    const env = workerTestEnv(label, options);
    opened.push(env);
    return env;
  };
}

/** Stores the fake base bundle and registers (signs) the task; createdAt is fixed so tasks are reproducible. */
export async function registerWorkerTask(
  env: { blobs: BlobStore; tasks: TaskRegistry },
  options: WorkerTaskOptions,
) {
  const base = fakeBaseBundle({
    modules: options.modules,
    ...(options.kernelValue !== undefined ? { kernelValue: options.kernelValue } : {}),
    ...(options.biasValue !== undefined ? { biasValue: options.biasValue } : {}),
  });
  const baseDigest = sha256Hex(base);
  if (!(await env.blobs.has(baseDigest))) await env.blobs.put(baseDigest, base);
  const modules = Object.keys(options.modules);
  const input: TaskDefinitionInput = {
    taskId: options.taskId,
    baseModel: { digest: baseDigest, format: 'tfjs-layers-bundle', bytes: base.length },
    adapter: options.adapter,
    moduleShapes: options.modules,
    rounds: {
      goalCount: options.goalCount ?? 5,
      minReports: options.minReports ?? 2,
      training: { epochs: 1, batchSize: 8, learningRate: 0.1, fedProxMu: 0, optimizer: 'sgd' },
    },
    policy: {
      allowedModules: modules,
      clipNorm: options.clipNorm ?? 10,
      maxBlobBytes: 64 * 1024 * 1024,
      strategy: options.strategy ?? { name: 'fedavg' },
      ...(options.dp ? { dp: options.dp } : {}),
      ...(options.weighting ? { weighting: options.weighting } : {}),
      audit: options.audit ?? {},
    },
    createdAt: 1_700_000_000_000,
  };
  return env.tasks.createTask(input);
}

export interface UpdateRefOptions {
  updateId: string;
  numExamples: number;
  clipped?: boolean;
}

/** Encodes a delta (F32 safetensors), stores it, and returns its job reference (norm computed here). */
export async function storeDelta(
  blobs: LocalDirBlobStore,
  delta: TensorMap,
  ref: UpdateRefOptions,
): Promise<AggregateUpdateRef> {
  const bytes = encodeFloat32Tensors(delta, {}, 'F32');
  const digest = sha256Hex(bytes);
  if (!(await blobs.has(digest))) await blobs.put(digest, bytes);
  const norm = globalL2Norm([...delta.values()].map((t) => t.values));
  return {
    updateId: ref.updateId,
    devicePseudonym: `dev_${sha256Hex(new TextEncoder().encode(ref.updateId)).slice(0, 32)}`,
    blobDigest: digest,
    numExamples: ref.numExamples,
    norm: Number.isFinite(norm) ? norm : 0,
    clipped: ref.clipped ?? false,
  };
}

/** A delta with the same names and shapes as `like`, values from `valueAt(name, index)`. */
export function deltaLike(like: TensorMap, valueAt: (name: string, index: number) => number): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, tensor] of like) {
    out.set(name, {
      shape: [...tensor.shape],
      values: Float32Array.from(tensor.values, (_, i) => valueAt(name, i)),
    });
  }
  return out;
}

export interface JobDataOptions {
  taskId: string;
  roundNumber: number;
  parentVersion: number;
  /** Default 10. */
  clipNorm?: number;
  updates: AggregateUpdateRef[];
}

/** The aggregate job of round `roundNumber` of `taskId` (round id `<taskId>:<roundNumber>`). */
export function jobData(options: JobDataOptions): AggregateJobData {
  return {
    taskId: options.taskId,
    roundId: `${options.taskId}:${options.roundNumber}`,
    roundNumber: options.roundNumber,
    parentVersion: options.parentVersion,
    clipNorm: options.clipNorm ?? 10,
    updates: options.updates,
  };
}

/** An audit that rejects nothing, for tests whose outcome must depend on the aggregation alone. */
export const PERMISSIVE_AUDIT = {
  madThreshold: 100,
  minCosine: -1,
  maxFlaggedFraction: 1,
  maxModuleDrift: 1e9,
  maxAccuracyDrop: 1,
};

/** The tensor name of the bias of module `hidden`, as the bias-only adapters of these tests name it. */
export const HIDDEN_BIAS = 'base_model.model.hidden.bias';

/**
 * A bias-only adapter on one dense module `hidden` of `shape` (the tests' smallest task): its spec,
 * module shapes, initial (zero) tensors, and a reader of the bias in a tensor map.
 */
export function hiddenBiasTask(shape: { in: number; out: number }, seed = 0) {
  const spec: AdapterSpec = { mode: 'bias', targetModules: ['hidden'], r: 1, alpha: 1, seed };
  const modules = { hidden: shape };
  return {
    spec,
    modules,
    initial: initialAdapterTensors(spec, modules),
    /** The bias values in `map`; throws when it holds none. */
    biasOf: (map: TensorMap): Float32Array => {
      const tensor = map.get(HIDDEN_BIAS);
      if (!tensor) throw new Error('no bias tensor');
      return tensor.values;
    },
  };
}

/** Deterministic pseudo-random numbers in [-1, 1) for test data (mulberry32, as the unit tests use). */
export function testRandom(seed: number): () => number {
  const random = seededRandom(seed);
  return () => random() * 2 - 1;
}

/** Polls `probe` every 50 ms until it returns non-null; throws naming `what` after `timeoutMs`. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const CRASH_SPEC: AdapterSpec = { mode: 'lora', targetModules: ['hidden', 'head'], r: 2, alpha: 4, seed: 3 };
const CRASH_MODULES = { hidden: { in: 16, out: 8 }, head: { in: 8, out: 4 } };

/**
 * Task `crash` and 6 updates under `env`, for the worker crash tests; the same calls on another
 * env give the same inputs (so a clean run can be compared with a crashed one).
 */
export async function seedCrashRound(env: WorkerTestEnv) {
  await registerWorkerTask(env, {
    taskId: 'crash',
    adapter: CRASH_SPEC,
    modules: CRASH_MODULES,
    minReports: 3,
  });
  const v0 = initialAdapterTensors(CRASH_SPEC, CRASH_MODULES);
  const rand = testRandom(77);
  const direction = deltaLike(v0, () => 0.02 * rand());
  const refs = [];
  for (let k = 0; k < 6; k++) {
    const delta = deltaLike(
      direction,
      (name, i) => (direction.get(name)?.values[i] ?? 0) * (1 + 0.1 * k) + 0.001 * rand(),
    );
    refs.push(await storeDelta(env.blobs, delta, { updateId: `c${k}`, numExamples: 5 + k }));
  }
  return jobData({ taskId: 'crash', roundNumber: 1, parentVersion: 0, updates: refs });
}

/**
 * Round 1 of `taskId` aggregated from `refs` with the deltas retained (as `--blobs` needs them):
 * its `aggregation` record, for an auditor's recomputation.
 */
export async function aggregateRetained(
  env: WorkerTestEnv,
  taskId: string,
  refs: AggregateUpdateRef[],
): Promise<RoundLogEventOf<'aggregation'>> {
  const deps = { ...env.deps, roundLog: workerRoundLog(env.log, { retainedUntil: () => 4_000_000_000_000 }) };
  const { processAggregateJob } = await loadAggregateJob();
  await processAggregateJob(jobData({ taskId, roundNumber: 1, parentVersion: 0, updates: refs }), deps, 1);
  const [event] = env.log.ofType('aggregation');
  if (!event) throw new Error('no aggregation record');
  return event;
}
