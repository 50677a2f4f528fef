import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64 } from '@flotilla/protocol';
import {
  DashboardSource,
  handleDashboardRequest,
  handleStaticRequest,
  type DashboardSnapshot,
} from '../src/server/dashboard/index.js';
import { RoundLogFollower } from '../src/server/metrics/index.js';
import { DeviceRegistry } from '../src/server/device-registry.js';
import { AdapterRegistry } from '../src/shared/adapter-registry.js';
import { redisKeys } from '../src/shared/keys.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { TaskRegistry } from '../src/shared/task-registry.js';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';

const OPERATOR = 'operator-token-dashboard-api-0123456789';
const AUDITOR = 'auditor-token-dashboard-api-0123456789';

describe('dashboard HTTP API (handler on a plain server, real Redis)', () => {
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  const prefix = uniquePrefix('dash-api');
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-dash-api-'));
  const aborter = new AbortController();
  let server: Server;
  let url: string;

  beforeAll(async () => {
    const devices = new DeviceRegistry({ redis, prefix });
    await devices.registerDevice({ deviceId: 'phone-7', publicKey: toBase64(nacl.sign.keyPair().publicKey) });
    const source = new DashboardSource({
      redis,
      keys: redisKeys(prefix),
      tasks: new TaskRegistry({ redis, prefix, signingKey: nacl.sign.keyPair() }),
      adapters: new AdapterRegistry({ redis, prefix }),
      devices,
      roundLog: new RoundLogFollower({ redis, prefix }),
      connectedDevices: () => 0,
      cacheMs: 0,
    });
    writeFileSync(join(dir, 'index.html'), '<p>device</p>');
    server = createServer((req, res) => {
      void (async () => {
        if (
          await handleDashboardRequest(req, res, {
            source,
            operatorToken: OPERATOR,
            auditorTokens: [AUDITOR],
            streamIntervalMs: 50,
            signal: aborter.signal,
          })
        )
          return;
        if (await handleStaticRequest(req, res, [{ urlPrefix: '/device/', dir }])) return;
        res.writeHead(418);
        res.end();
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    aborter.abort();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (path: string, token?: string) =>
    fetch(`${url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  it('serves the page and its assets without a token, and only whitelisted assets', async () => {
    const page = await get('/dashboard');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await page.text();
    // Offline: every script and stylesheet comes from the coordinator itself.
    expect(html).not.toMatch(/https?:\/\//);
    for (const asset of ['dashboard.js', 'views.js', 'charts.js', 'dashboard.css']) {
      const res = await get(`/dashboard/assets/${asset}`);
      expect(res.status, asset).toBe(200);
      expect(await res.text()).not.toMatch(/(src|href)=["']https?:/);
    }
    expect((await get('/dashboard/assets/dashboard-handler.ts')).status).toBe(404);
    expect((await get('/dashboard/assets/..%2Fdashboard-handler.js')).status).toBe(404);
    expect((await get('/dashboard/nope')).status).toBe(404);
    expect((await fetch(`${url}/dashboard/api/state`, { method: 'POST' })).status).toBe(405);
    expect((await get('/elsewhere')).status).toBe(418);
  });

  it('answers the state to operators (with devices) and auditors (without), 401 otherwise', async () => {
    expect((await get('/dashboard/api/state')).status).toBe(401);
    expect((await get('/dashboard/api/state', 'wrong-token-wrong-token')).status).toBe(401);
    const operator = (await (await get('/dashboard/api/state', OPERATOR)).json()) as DashboardSnapshot;
    expect(operator.role).toBe('operator');
    expect(operator.fleet).toEqual({ enrolled: 1, revoked: 0, connected: 0, eligible: 0 });
    expect(operator.devices?.map((d) => d.deviceId)).toEqual(['phone-7']);
    expect(operator.chain).toMatchObject({ records: 0, head: null, verified: { ok: true, through: null } });
    const auditorText = await (await get('/dashboard/api/state', AUDITOR)).text();
    const auditor = JSON.parse(auditorText) as DashboardSnapshot;
    expect(auditor.role).toBe('auditor');
    expect(auditor.devices).toBeUndefined();
    expect(auditorText).not.toContain('phone-7');
  });

  it('streams snapshots as Server-Sent Events, ending when the server aborts', async () => {
    const res = await get('/dashboard/api/stream', AUDITOR);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = res.body?.pipeThrough(new TextDecoderStream()).getReader();
    if (!reader) throw new Error('no body');
    let text = '';
    while (!text.includes('event: state\ndata: ')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const data = /event: state\ndata: (.*)\n\n/.exec(text)?.[1] ?? '';
    expect((JSON.parse(data) as DashboardSnapshot).role).toBe('auditor');
    await reader.cancel();
  });

  it('serves static mounts without escaping their directory', async () => {
    expect(await (await get('/device/')).text()).toBe('<p>device</p>');
    expect((await fetch(`${url}/device`, { redirect: 'manual' })).status).toBe(301);
    expect((await get('/device/..%2f..%2fetc%2fpasswd')).status).toBe(404);
    expect((await get('/device/missing.js')).status).toBe(404);
  });
});
