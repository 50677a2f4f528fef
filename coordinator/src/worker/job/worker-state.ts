import type { Redis } from 'ioredis';
import { z } from 'zod';
import {
  ServerOptimizerNameSchema,
  decodeFloat32Tensors,
  encodeFloat32Tensors,
  sha256Hex,
} from '@flotilla/protocol';
import type { BlobStore } from '../../shared/blob-store/index.js';
import { redisKeys } from '../../shared/keys.js';
import type { RdpAccountantState } from '../privacy/index.js';
import type { ServerOptimizerState } from '../strategies/index.js';

/**
 * What the worker carries from round to round for a task, in Redis (AOF): the privacy accountant,
 * the server optimizer state (a safetensors blob, by digest), the id of the last round whose noised
 * aggregate was charged (written with the accountant, before anything about the round is
 * published), and the id of the last promoted round (written with the optimizer state), so a
 * retried job never charges a round twice nor steps the optimizer twice.
 */
const WorkerStateSchema = z.object({
  accountant: z.unknown().optional(),
  optimizer: z
    .object({
      strategy: ServerOptimizerNameSchema,
      step: z.number().int().nonnegative(),
      digest: z.string(),
    })
    .optional(),
  lastChargedRound: z.string().optional(),
  /** null: never promoted; absent: a state written before charging and promotion were separate. */
  lastPromotedRound: z.string().nullable().optional(),
});
type StoredWorkerState = z.infer<typeof WorkerStateSchema>;

export interface TaskWorkerState {
  accountant: RdpAccountantState | undefined;
  optimizer: ServerOptimizerState | undefined;
  lastChargedRound: string | undefined;
  lastPromotedRound: string | undefined;
}

function stateKey(prefix: string, taskId: string): string {
  return redisKeys(prefix).workerState(taskId);
}

export async function readWorkerState(
  redis: Redis,
  prefix: string,
  taskId: string,
  blobs: BlobStore,
): Promise<TaskWorkerState> {
  const raw = await redis.get(stateKey(prefix, taskId));
  const stored: StoredWorkerState = raw === null ? {} : WorkerStateSchema.parse(JSON.parse(raw));
  let optimizer: ServerOptimizerState | undefined;
  if (stored.optimizer) {
    const bytes = await blobs.get(stored.optimizer.digest);
    if (bytes) {
      const buffers: Record<string, Float32Array> = {};
      for (const [name, tensor] of decodeFloat32Tensors(bytes).tensors) buffers[name] = tensor.values;
      optimizer = { strategy: stored.optimizer.strategy, step: stored.optimizer.step, buffers };
    }
  }
  return {
    accountant: stored.accountant as RdpAccountantState | undefined,
    optimizer,
    lastChargedRound: stored.lastChargedRound,
    // Before the two were separate, lastChargedRound was written at promotion only.
    lastPromotedRound:
      stored.lastPromotedRound === undefined
        ? stored.lastChargedRound
        : (stored.lastPromotedRound ?? undefined),
  };
}

export async function writeWorkerState(
  redis: Redis,
  prefix: string,
  taskId: string,
  blobs: BlobStore,
  state: TaskWorkerState,
): Promise<void> {
  const stored: StoredWorkerState = {};
  if (state.accountant) stored.accountant = state.accountant;
  if (state.lastChargedRound) stored.lastChargedRound = state.lastChargedRound;
  stored.lastPromotedRound = state.lastPromotedRound ?? null;
  if (state.optimizer) {
    const tensors = new Map(
      Object.entries(state.optimizer.buffers).map(([name, values]) => [
        name,
        { shape: [values.length], values },
      ]),
    );
    const bytes = encodeFloat32Tensors(tensors, {}, 'F32');
    const digest = sha256Hex(bytes);
    await blobs.put(digest, bytes);
    stored.optimizer = { strategy: state.optimizer.strategy, step: state.optimizer.step, digest };
  }
  await redis.set(stateKey(prefix, taskId), JSON.stringify(stored));
}
