import { z } from 'zod';

/** Lowercase hex SHA-256: the content address of a blob. */
export const DigestSchema = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex SHA-256 digest');
/** 32 random bytes as lowercase hex: challenge and round nonces. */
export const NonceSchema = z.string().regex(/^[0-9a-f]{64}$/, 'expected a 32-byte hex nonce');
/** base64 ed25519 signature (64 bytes). */
export const SignatureSchema = z
  .string()
  .regex(/^[A-Za-z0-9+/]{86}==$/, 'expected a base64 ed25519 signature');
/** base64 ed25519 public key (32 bytes). */
export const PublicKeySchema = z
  .string()
  .regex(/^[A-Za-z0-9+/]{43}=$/, 'expected a base64 ed25519 public key');
/** Device ids are chosen at enrollment: letters, digits, `-`, `_`, `.`, 1–64 characters. */
export const DeviceIdSchema = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'device id: 1-64 of [A-Za-z0-9._-]');
export const TaskIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'task id: lowercase, digits and -, 1-63');
/** Round ids are `<taskId>:<roundNumber>`. */
export const RoundIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}:[0-9]{1,12}$/, 'round id: <taskId>:<number>');
export const ProtocolVersionSchema = z.string().regex(/^\d+\.\d+$/);
/** Milliseconds since the Unix epoch. */
export const EpochMsSchema = z.number().int().nonnegative();

export const WireErrorSchema = z.object({ code: z.string(), message: z.string() });

/** Every acknowledgement: `{ ok: true, data }` or `{ ok: false, error: { code, message } }`. */
export type Ack<T> = { ok: true; data: T } | { ok: false; error: { code: string; message: string } };

export function ackSchema<T extends z.ZodType>(data: T) {
  return z.discriminatedUnion('ok', [
    z.object({ ok: z.literal(true), data }),
    z.object({ ok: z.literal(false), error: WireErrorSchema }),
  ]);
}
