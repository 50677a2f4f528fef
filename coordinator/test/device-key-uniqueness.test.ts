import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64 } from '@flotilla/protocol';
import { ProcessCluster } from './support/index.js';

// One public key could be enrolled under several device ids: whoever holds the key then acts as
// all of them, and revoking one id leaves the key working under the others. Against a coordinator
// process: refused with KEY_IN_USE, whatever the route and however the key is spelled.

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** The same 32 key bytes in another base64 spelling: the last character's 2 unused bits set. */
function respelled(publicKey: string): string {
  const last = publicKey.at(-2) ?? 'A';
  return `${publicKey.slice(0, -2)}${B64[B64.indexOf(last) ^ 1] ?? 'A'}=`;
}

describe('one public key, one device id (coordinator process)', () => {
  const cluster = new ProcessCluster('keys');
  const shared = toBase64(nacl.sign.keyPair().publicKey);
  const legacyKey = toBase64(nacl.sign.keyPair().publicKey);

  beforeAll(async () => {
    // Two enrollments sharing a key, written before the key index existed.
    for (const deviceId of ['legacy-a', 'legacy-b']) {
      const record = { deviceId, publicKey: legacyKey, status: 'active', enrolledAt: 1, via: 'operator' };
      await cluster.redis.set(cluster.keys.device(deviceId), JSON.stringify(record));
      await cluster.redis.sadd(cluster.keys.devices(), deviceId);
    }
    await cluster.startCoordinator();
  });
  afterAll(() => cluster.stop());

  const register = (deviceId: string, publicKey: string) =>
    cluster.operator('POST', '/api/admin/devices', { deviceId, publicKey });

  it('refuses a second device id for an enrolled key, by registration and by token', async () => {
    expect((await register('first', shared)).status).toBe(201);
    const second = await register('second', shared);
    expect(second.status).toBe(409);
    expect(await second.json()).toEqual({
      error: { code: 'KEY_IN_USE', message: 'this public key is already enrolled under another device id' },
    });
    // The same key bytes spelled differently are the same key.
    expect(respelled(shared)).not.toBe(shared);
    expect((await register('third', respelled(shared))).status).toBe(409);

    const { token } = (await (
      await cluster.operator('POST', '/api/admin/enrollment-tokens', { ttlMs: 60_000 })
    ).json()) as { token: string };
    const enroll = (deviceId: string, publicKey: string) =>
      fetch(`${cluster.url(0)}/api/enroll`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token, deviceId, publicKey }),
      });
    const refused = await enroll('by-token', shared);
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('KEY_IN_USE');
    // The token was not spent on the refusal: the device enrolls with a key of its own.
    expect((await enroll('by-token', toBase64(nacl.sign.keyPair().publicKey))).status).toBe(201);
  });

  it('keeps a revoked key bound to its id: re-registration of that id only', async () => {
    expect((await cluster.operator('DELETE', '/api/admin/devices/first')).status).toBe(200);
    expect((await register('fourth', shared)).status).toBe(409);
    expect((await register('first', shared)).status).toBe(201);
  });

  it('indexes enrollments made before the index existed, and reports keys shared by several ids', async () => {
    const warning = cluster.coordinators[0]?.logs
      .map((line) => {
        try {
          return JSON.parse(line) as { msg?: string; deviceIds?: string[] };
        } catch {
          return {};
        }
      })
      .find(
        (entry) => entry.msg === 'one public key is enrolled under several device ids: revoke all but one',
      );
    expect(warning?.deviceIds).toEqual(['legacy-a', 'legacy-b']);
    expect((await register('legacy-c', legacyKey)).status).toBe(409);
  });
});
