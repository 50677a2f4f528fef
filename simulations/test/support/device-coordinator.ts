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

/** Builds the test MLP (tfjs on the cpu backend), stores its bundle and registers the task. */
export async function registerMlpTask(coordinator: Coordinator, options: MlpTaskOptions): Promise<void> {
  await initBackend({ prefer: 'cpu', logger: () => undefined });
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ name: 'hidden', inputShape: [MLP_FEATURES], units: 8, activation: 'relu' }),
      tf.layers.dense({ name: 'head', units: MLP_CLASSES, activation: 'softmax' }),
    ],
  });
  const base = await serializeBaseModel(model);
  model.dispose();
  const digest = sha256Hex(base);
  await coordinator.blobs.put(digest, base);
  await coordinator.createTask(mlpTaskDefinition({ digest, bytes: base.byteLength }, options));
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
