// The test task (LoRA rank 2 on one dense layer over a stand-in base model), registered in process
// or over HTTP, and deltas for it whose norm is exact.
import { randomBytes } from 'node:crypto';
import {
  encodeFloat32Tensors,
  loraTensorNames,
  sha256Hex,
  type TaskDefinitionInput,
} from '@flotilla/protocol';
import type { Coordinator } from '../../src/server/coordinator.js';
import { operatorFetch } from './operator-api.js';

export const MODULE = 'dense';
/** Layer sizes of the test task: a dense layer with 4 inputs and 3 outputs, LoRA rank 2. */
export const SHAPES = { in: 4, out: 3 };
export const RANK = 2;

export type RoundsInput = Partial<NonNullable<TaskDefinitionInput['rounds']>>;

export interface TestTaskOptions {
  taskId?: string;
  rounds?: RoundsInput;
  clipNorm?: number;
  maxBlobBytes?: number;
  /** A DP policy (`policy.dp`); none by default. */
  dp?: NonNullable<TaskDefinitionInput['policy']>['dp'];
  /** Policy fields that replace the test task's (applied last). */
  policy?: Partial<NonNullable<TaskDefinitionInput['policy']>>;
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
      ...options.policy,
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
