import { z } from 'zod';
import {
  DeviceIdSchema,
  NonceSchema,
  ProtocolVersionSchema,
  PublicKeySchema,
  SignatureSchema,
} from './primitives.js';

/**
 * Hello — sent by the device in the socket.io handshake (`io(url, { auth: hello })`).
 * Reply: the connection is refused (connect_error with `data: { code, message }`) for an unknown
 * or revoked device or a protocol version mismatch; otherwise the server emits `auth:challenge`.
 */
export const HelloSchema = z.object({
  deviceId: DeviceIdSchema,
  protocolVersion: ProtocolVersionSchema,
});
export type Hello = z.infer<typeof HelloSchema>;

/**
 * auth:challenge — sent by the server right after connect. The device signs
 * `{ deviceId, nonce, coordinatorKey }` in the `flotilla/v1/auth-challenge` domain.
 */
export const AuthChallengeSchema = z.object({
  nonce: NonceSchema,
  /** The coordinator's ed25519 public key; devices pin it on first use or from config. */
  coordinatorKey: PublicKeySchema,
  serverTime: z.number().int(),
});
export type AuthChallenge = z.infer<typeof AuthChallengeSchema>;

/** The payload the device signs to answer a challenge. */
export const AuthChallengePayloadSchema = z.object({
  deviceId: DeviceIdSchema,
  nonce: NonceSchema,
  coordinatorKey: PublicKeySchema,
});
export type AuthChallengePayload = z.infer<typeof AuthChallengePayloadSchema>;

/**
 * auth:response — sent by the device. Ack: `{ sessionToken, expiresAt }` (the bearer token for
 * `PUT /blobs`), or BAD_SIGNATURE and the connection is closed.
 */
export const AuthResponseSchema = z.object({ signature: SignatureSchema });
export type AuthResponse = z.infer<typeof AuthResponseSchema>;

export const AuthResultSchema = z.object({
  deviceId: DeviceIdSchema,
  /** Bearer token for the HTTP blob endpoints, valid until `expiresAt` (epoch ms). */
  sessionToken: z.string().min(32).max(128),
  expiresAt: z.number().int(),
});
export type AuthResult = z.infer<typeof AuthResultSchema>;
