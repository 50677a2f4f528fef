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
  /**
   * Set in a DP round: how the round log names the update (`commitUpdate`), which then withholds
   * its norm, clipped flag, size and example count (docs/privacy.md).
   */
  commitment: DigestSchema.optional(),
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
  const where = { type: 'update.accepted', taskId: round.taskId, roundId: round.roundId } as const;
  if (update.commitment !== undefined)
    return {
      ...where,
      device: update.devicePseudonym,
      blobDigest: update.commitment,
      norm: null,
      clipBound: round.clipNorm,
      clipped: null,
      bytes: null,
      numExamples: null,
    };
  return {
    ...where,
    device: update.devicePseudonym,
    blobDigest: update.blobDigest,
    norm: update.norm,
    clipBound: round.clipNorm,
    clipped: update.clipped,
    bytes: update.blobBytes,
    numExamples: update.numExamples,
  };
}

/** How the round log names a stored update: its commitment in a DP round, else its blob digest. */
export function loggedDigest(update: Pick<AcceptedUpdate, 'blobDigest' | 'commitment'>): string {
  return update.commitment ?? update.blobDigest;
}
