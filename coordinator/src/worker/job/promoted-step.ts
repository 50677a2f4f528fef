// The last promoted step (the promoted adapter minus its parent), kept for the next rounds'
// audits: an outside reference for directions, public to the whole fleet, for rounds in which
// attackers are as many as the honest devices and the round's own median is half theirs
// (update-screen.ts). Stored as a blob, its digest per round number, so a retried job reads
// exactly what its first attempt read; a step whose blob is gone is no reference (null).
import { DigestSchema, decodeFloat32Tensors, encodeFloat32Tensors, sha256Hex } from '@flotilla/protocol';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { BlobStore } from '../../shared/blob-store/index.js';
import { redisKeys } from '../../shared/keys.js';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import type { TensorLayout } from '../strategies/flatten.js';

const StoredSchema = z.object({ roundNumber: z.number().int().nonnegative(), digest: DigestSchema });

/** Promoted rounds whose steps are kept. */
const KEEP = 3;

/** The step of the latest promoted round before `roundNumber`, or null. */
export async function readPromotedStep(
  deps: { redis: Redis; prefix: string; blobs: BlobStore },
  job: { taskId: string; roundNumber: number },
): Promise<TensorMap | null> {
  const [raw] = await deps.redis.zrevrangebyscore(
    redisKeys(deps.prefix).promotedSteps(job.taskId),
    job.roundNumber - 1,
    '-inf',
    'LIMIT',
    0,
    1,
  );
  if (raw === undefined) return null;
  const parsed = StoredSchema.safeParse(JSON.parse(raw));
  if (!parsed.success) return null;
  const bytes = await deps.blobs.get(parsed.data.digest);
  return bytes ? decodeFloat32Tensors(bytes).tensors : null;
}

/** Records the step promoted in round `roundNumber`; keeps the latest few. */
export async function writePromotedStep(
  deps: { redis: Redis; prefix: string; blobs: BlobStore },
  job: { taskId: string; roundId: string; roundNumber: number },
  step: TensorMap,
): Promise<void> {
  const bytes = encodeFloat32Tensors(
    step,
    { 'flotilla.round': job.roundId, 'flotilla.kind': 'promoted-step' },
    'F32',
  );
  const digest = sha256Hex(bytes);
  await deps.blobs.put(digest, bytes);
  const key = redisKeys(deps.prefix).promotedSteps(job.taskId);
  const value = JSON.stringify(StoredSchema.parse({ roundNumber: job.roundNumber, digest }));
  await deps.redis
    .multi()
    .zremrangebyscore(key, job.roundNumber, job.roundNumber)
    .zadd(key, job.roundNumber, value)
    .zremrangebyrank(key, 0, -(KEEP + 1))
    .exec();
}

/**
 * The step's values in an update's flattened layout: each slot from the step's tensor of that
 * name and size, zeros where the step has none (e.g. a frozen tensor it left out).
 */
export function stepInLayout(step: TensorMap, layout: TensorLayout): Float32Array {
  const out = new Float32Array(layout.reduce((sum, slot) => sum + slot.length, 0));
  for (const slot of layout) {
    const tensor = step.get(slot.name);
    if (tensor?.values.length === slot.length) out.set(tensor.values, slot.offset);
  }
  return out;
}
