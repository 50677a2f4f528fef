import { z } from 'zod';
import {
  DeviceIdSchema,
  FlotillaError,
  PublicKeySchema,
  toBase64,
  type SigningKeyPair,
} from '@flotilla/protocol';
import { CoordinatorHttp, type FetchFn } from '../device/http-client.js';

export interface EnrollDeviceOptions {
  /** Coordinator base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** One-time enrollment token issued by the operator. */
  token: string;
  /** The id this device will use: 1–64 of [A-Za-z0-9._-]. */
  deviceId: string;
  /** The device key pair; only the public key is sent. */
  keys: SigningKeyPair;
  fetch?: FetchFn;
}

const EnrollResultSchema = z.object({ deviceId: DeviceIdSchema, coordinatorKey: PublicKeySchema });
export type EnrollResult = z.infer<typeof EnrollResultSchema>;

/**
 * Enrolls a device with a one-time token: `POST /api/enroll { token, deviceId, publicKey }`.
 * Returns the coordinator's public key, which the caller may pin (trust on first use). Throws
 * UNAUTHORIZED for an unknown, used or expired token and FORBIDDEN for an id already enrolled.
 */
export async function enrollDevice(options: EnrollDeviceOptions): Promise<EnrollResult> {
  const http = new CoordinatorHttp({
    url: options.url,
    sessionToken: () => null,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const response = await http.request('/api/enroll', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      token: options.token,
      deviceId: DeviceIdSchema.parse(options.deviceId),
      publicKey: toBase64(options.keys.publicKey),
    }),
  });
  const parsed = EnrollResultSchema.safeParse(await response.json());
  if (!parsed.success) throw new FlotillaError('BAD_REQUEST', 'malformed enrollment answer');
  return parsed.data;
}
