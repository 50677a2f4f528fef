import { z } from 'zod';
import { DigestSchema } from '@flotilla/protocol';

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
