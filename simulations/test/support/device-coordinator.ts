// What the device tests (Node devices, the browser page, the installed packages) register on a
// real coordinator: the small MLP they train (dense `hidden`, 8 ReLU units, then `head`, softmax)
// as the base model, a LoRA task on both layers, and one-time enrollment tokens for their devices.
import * as tf from '@tensorflow/tfjs';
import { sha256Hex, type TaskDefinitionInput } from '@flotilla/protocol';
import { initBackend, serializeBaseModel } from '@flotilla/client';
import type { Coordinator } from '@flotilla/coordinator/server';

/** Inputs and classes of the test MLP (base-model.mjs builds the same one for the packages). */
export const MLP_FEATURES = 4;
export const MLP_CLASSES = 3;

type Rounds = TaskDefinitionInput['rounds'];

export interface MlpTaskOptions {
  taskId: string;
  /** Over one device per round, selected at once, that reports whatever its holdout says. */
  rounds?: Partial<Omit<Rounds, 'training'>>;
  /** Over one epoch of batches of 8 at learning rate 0.1 (plain SGD). */
  training?: Partial<Rounds['training']>;
  /** Default 1. */
  clipNorm?: number;
}

/** A LoRA task (r 2, alpha 4) on both layers of the test MLP whose bundle is `base`. */
export function mlpTaskDefinition(
  base: { digest: string; bytes: number },
  options: MlpTaskOptions,
): TaskDefinitionInput {
  return {
    taskId: options.taskId,
    baseModel: { digest: base.digest, format: 'tfjs-layers-bundle', bytes: base.bytes },
    adapter: { mode: 'lora', targetModules: ['hidden', 'head'], r: 2, alpha: 4, seed: 7 },
    moduleShapes: { hidden: { in: MLP_FEATURES, out: 8 }, head: { in: 8, out: MLP_CLASSES } },
    rounds: {
      goalCount: 1,
      overSelection: 1,
      minReports: 1,
      retryAfterMs: 300,
      validationTolerance: 10,
      ...options.rounds,
      training: {
        epochs: 1,
        batchSize: 8,
        learningRate: 0.1,
        fedProxMu: 0,
        optimizer: 'sgd',
        ...options.training,
      },
    },
    policy: {
      allowedModules: ['hidden', 'head'],
      clipNorm: options.clipNorm ?? 1,
      maxBlobBytes: 64 * 1024,
      strategy: { name: 'fedavg' },
      audit: {},
    },
    createdAt: Date.now(),
  };
}

/** The test MLP's base-model bundle (built with tfjs on the cpu backend) and its digest. */
export async function mlpBaseBundle(): Promise<{ bytes: Uint8Array; digest: string }> {
  await initBackend({ prefer: 'cpu', logger: () => undefined });
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ name: 'hidden', inputShape: [MLP_FEATURES], units: 8, activation: 'relu' }),
      tf.layers.dense({ name: 'head', units: MLP_CLASSES, activation: 'softmax' }),
    ],
  });
  const bytes = await serializeBaseModel(model);
  model.dispose();
  return { bytes, digest: sha256Hex(bytes) };
}

/** Stores the test MLP's bundle and registers the task on an in-process coordinator. */
export async function registerMlpTask(coordinator: Coordinator, options: MlpTaskOptions): Promise<void> {
  const base = await mlpBaseBundle();
  await coordinator.blobs.put(base.digest, base.bytes);
  await coordinator.createTask(
    mlpTaskDefinition({ digest: base.digest, bytes: base.bytes.byteLength }, options),
  );
}

/** The same through the operator API, for a coordinator in another process (`flotilla coordinator`). */
export async function registerMlpTaskOverHttp(
  url: string,
  operatorToken: string,
  options: MlpTaskOptions,
): Promise<void> {
  const base = await mlpBaseBundle();
  const authorization = `Bearer ${operatorToken}`;
  const put = await fetch(`${url}/blobs/${base.digest}`, {
    method: 'PUT',
    headers: { authorization },
    body: Buffer.from(base.bytes),
  });
  if (put.status !== 201 && put.status !== 200) throw new Error(`base upload: ${put.status}`);
  const task = mlpTaskDefinition({ digest: base.digest, bytes: base.bytes.byteLength }, options);
  const res = await fetch(`${url}/api/admin/tasks`, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/json' },
    body: JSON.stringify(task),
  });
  if (res.status !== 201) throw new Error(`task: ${res.status} ${await res.text()}`);
}

/** A one-time enrollment token, minted with the operator token. */
export async function mintEnrollmentToken(url: string, operatorToken: string): Promise<string> {
  const res = await fetch(`${url}/api/admin/enrollment-tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/json' },
    body: '{}',
  });
  return ((await res.json()) as { token: string }).token;
}
