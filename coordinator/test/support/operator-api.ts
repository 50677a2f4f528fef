// What an operator and a device do over HTTP before any socket: operator API requests, device
// registration, and enrollment with a one-time token.

/** A request to the operator API of the coordinator at `url`, with a JSON body. */
export function operatorFetch(
  url: string,
  operatorToken: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  return fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

/** Registers a device through the operator API (`POST /api/admin/devices`); throws unless accepted. */
export async function registerDeviceOverHttp(
  url: string,
  operatorToken: string,
  device: { deviceId: string; publicKey: string },
): Promise<void> {
  const { deviceId, publicKey } = device;
  const res = await operatorFetch(url, operatorToken, 'POST', '/api/admin/devices', { deviceId, publicKey });
  if (res.status >= 300) throw new Error(`register ${deviceId}: ${res.status} ${await res.text()}`);
}

/**
 * Enrollment as a fleet does it over HTTP: the operator mints a one-time token on the coordinator
 * at `url`, and the device presents it with its key at `enrollUrl` (default: the same one).
 */
export async function enrollWithToken(options: {
  url: string;
  operatorToken: string;
  device: { deviceId: string; publicKey: string };
  enrollUrl?: string;
}): Promise<{ token: string; enrolled: Response }> {
  const minted = await operatorFetch(
    options.url,
    options.operatorToken,
    'POST',
    '/api/admin/enrollment-tokens',
    {
      ttlMs: 60_000,
    },
  );
  const { token } = (await minted.json()) as { token: string };
  const enrolled = await presentEnrollmentToken(options.enrollUrl ?? options.url, token, options.device);
  return { token, enrolled };
}

/** `POST /api/enroll` with a one-time token and the device's id and key. */
export function presentEnrollmentToken(
  url: string,
  token: string,
  device: { deviceId: string; publicKey: string },
): Promise<Response> {
  return fetch(`${url}/api/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, deviceId: device.deviceId, publicKey: device.publicKey }),
  });
}
