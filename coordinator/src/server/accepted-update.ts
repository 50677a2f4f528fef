import { z } from 'zod';
import { DigestSchema, type RoundLogEventOf } from '@flotilla/protocol';

/** What the server stores per accepted update in `${prefix}:round:<roundId>:updates`. */
export const AcceptedUpdateSchema = z.object({
  updateId: z.string(),
  deviceId: z.string(),
  devicePseudonym: z.string(),
  blobDigest: DigestSchema,
  blobBytes: z.number().int().positive(),
  numExamples: z.number().int().positive(),
  norm: z.number().nonnegative(),
  reportedNorm: z.number().nonnegative(),
  clipped: z.boolean(),
  quantization: z.enum(['none', 'int8']),
  signature: z.string(),
  acceptedAt: z.number().int(),
});
export type AcceptedUpdate = z.infer<typeof AcceptedUpdateSchema>;

/**
 * The `update.accepted` round-log event of a stored update: written by the accepting process, or
 * by the round's closer for an acceptance that process did not get to log (one source, so both
 * write the same record).
 */
export function acceptedUpdateEvent(
  round: { taskId: string; roundId: string; clipNorm: number },
  update: AcceptedUpdate,
): RoundLogEventOf<'update.accepted'> {
  return {
    type: 'update.accepted',
    taskId: round.taskId,
    roundId: round.roundId,
    device: update.devicePseudonym,
    blobDigest: update.blobDigest,
    norm: update.norm,
    clipBound: round.clipNorm,
    clipped: update.clipped,
    bytes: update.blobBytes,
    numExamples: update.numExamples,
  };
}
