import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPairFromSeed, toBase64 } from '@flotilla/protocol';
import { testRedisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { handleAuditRequest } from './audit-api.js';
import { redisOptionsFromUrl } from './redis-connection.js';
import { openRoundLog } from './round-log/writer.js';
import { roundAbandonedInSelection, roundOpened } from '../../test/support/index.js';

const key = keyPairFromSeed(new Uint8Array(32).fill(6));
const TOKEN = 'auditor-token-0123456789';
const prefix = uniquePrefix('audit-api');
let redis: Redis;
let server: Server;
let base: string;
let dir: string;

beforeAll(async () => {
  redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  dir = mkdtempSync(join(tmpdir(), 'flotilla-audit-api-'));
  const writer = openRoundLog({
    redis,
    prefix,
    filePath: join(dir, 'round-log.jsonl'),
    signingKey: key,
    pseudonymSecret: new Uint8Array(32),
  });
  // Rounds 1 and 2 time out in selection (no plan, so no round.opened); round 3 is open.
  for (const n of [1, 2]) await writer.append(roundAbandonedInSelection(n));
  await writer.append(roundOpened(3));
  server = createServer((req, res) => {
    void handleAuditRequest(req, res, { redis, prefix, auditorTokens: [TOKEN] }).then((handled) => {
      if (!handled) res.writeHead(418).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

const auth = { authorization: `Bearer ${TOKEN}` };

describe('auditor API', () => {
  it('serves records with the token, paged', async () => {
    const res = await fetch(`${base}/api/audit/records?from=1&limit=1`, { headers: auth });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { records: Array<{ seq: number }>; next: number | null };
    expect(body.records.map((r) => r.seq)).toEqual([1]);
    expect(body.next).toBe(2);
    const rest = (await (await fetch(`${base}/api/audit/records?from=2`, { headers: auth })).json()) as {
      next: number | null;
    };
    expect(rest.next).toBeNull();
    expect((await fetch(`${base}/api/audit/records?limit=0`, { headers: auth })).status).toBe(400);
  });

  it('verifies the live log and summarizes a round', async () => {
    const verify = (await (await fetch(`${base}/api/audit/verify`, { headers: auth })).json()) as Record<
      string,
      unknown
    >;
    expect(verify).toMatchObject({
      ok: true,
      // Three records, each with the tree head signed right after it.
      records: 6,
      firstBad: null,
      problems: [],
      trustedKey: toBase64(key.publicKey),
      head: { seq: 5, treeHead: { treeSize: 3, keyId: toBase64(key.publicKey) } },
      unsigned: 0,
    });
    const round = await fetch(`${base}/api/audit/rounds/2`, { headers: auth });
    expect(round.status).toBe(200);
    expect(
      ((await round.json()) as { rounds: Array<{ roundId: string }> }).rounds.map((r) => r.roundId),
    ).toEqual(['demo:2']);
    const open = (await (await fetch(`${base}/api/audit/rounds/3`, { headers: auth })).json()) as {
      rounds: Array<{ roundId: string; status: string }>;
    };
    expect(open.rounds).toMatchObject([{ roundId: 'demo:3', status: 'open' }]);
    expect((await fetch(`${base}/api/audit/rounds/9`, { headers: auth })).status).toBe(404);
  });

  it('is 401 without or with a wrong token', async () => {
    const none = await fetch(`${base}/api/audit/records`);
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({
      error: { code: 'UNAUTHORIZED', message: 'an auditor bearer token is required' },
    });
    expect(
      (await fetch(`${base}/api/audit/verify`, { headers: { authorization: 'Bearer nope' } })).status,
    ).toBe(401);
  });

  it('is 405 FORBIDDEN for anything but GET, even with the token', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await fetch(`${base}/api/audit/records`, { method, headers: auth });
      expect(res.status).toBe(405);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    }
  });

  it('leaves other paths to the caller', async () => {
    expect((await fetch(`${base}/api/other`, { headers: auth })).status).toBe(418);
  });
});
