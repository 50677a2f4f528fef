// Issue 15 (critical): a stock socket.io client, or a raw engine.io long-polling session, used to
// end the coordinator process with an uncaught ERR_HTTP_HEADERS_SENT, because the HTTP routes also
// answered the /socket.io/ requests engine.io answers. Against a coordinator child process: raw
// polling requests (slow, oversized, truncated, bad sid, bad EIO, garbage) leave it up and
// serving, and devices on socket.io-client's default transports (polling, then upgrade) and on
// polling alone complete a whole round, promoted by a worker.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterPromoted, RoundPlan } from '@flotilla/protocol';
import { redisKeys } from '../src/shared/keys.js';
import type { AggregationWorker } from '../src/worker/aggregation-worker.js';
import {
  bodyOf,
  createTestTaskOverHttp,
  loraDelta,
  openPollingSession,
  OPERATOR_TOKEN,
  pollingFuzzCases,
  pollingPath,
  ProcessCluster,
  rawRequest,
  registerDeviceOverHttp,
  sendPollingCase,
  startRoundLogWorker,
  statusOf,
  TestDevice,
  waitFor,
} from './support/index.js';
import type { ChildCoordinator } from './support/index.js';

const TASK = 'polling-task';
const FUZZ_REQUESTS = 240;
const FUZZ_IN_FLIGHT = 24;

/** The log lines that show a process-level failure (an uncaught error, or one caught by the last-resort guard). */
const crashLines = (logs: string[]) =>
  logs.filter((line) => /ERR_HTTP_HEADERS_SENT|uncaught|unhandled/i.test(line));

describe('socket.io transports against a coordinator process', () => {
  const cluster = new ProcessCluster('polling');
  const { redis, prefix, stateDir } = cluster;
  const devices: TestDevice[] = [];
  let child: ChildCoordinator;
  let port: number;
  let worker: AggregationWorker | null = null;

  beforeAll(async () => {
    child = await cluster.startCoordinator();
    port = child.port;
  });
  afterAll(async () => {
    for (const d of devices) d.disconnect();
    await worker?.close();
    await cluster.stop();
  });

  // The raw requests below run one kind per `it`, in order, against the same process; the last
  // `it` checks that none of them took it down.
  describe('raw engine.io requests', () => {
    it('answers a long poll and a POST sent in pieces on one session (the pair that used to crash it)', async () => {
      const { url } = child;
      // A session with a long-poll GET waiting, then a POST whose body arrives in three pieces:
      // the request pair that used to crash the process. The socket.io CONNECT it carries has no
      // auth, so the coordinator refuses it, and that refusal is what the waiting GET receives.
      const sid = await openPollingSession(url);
      const poll = rawRequest({
        port,
        head: `GET ${pollingPath({ EIO: '4', transport: 'polling', sid })} HTTP/1.1\r\nHost: x\r\n\r\n`,
        body: new Uint8Array(0),
        then: 'stall',
        timeoutMs: 15_000,
      });
      await new Promise((r) => setTimeout(r, 200));
      const connectPacket = new TextEncoder().encode('40');
      const slowPost = await rawRequest({
        port,
        head:
          `POST ${pollingPath({ EIO: '4', transport: 'polling', sid })} HTTP/1.1\r\nHost: x\r\n` +
          `Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\nConnection: close\r\n\r\n`,
        body: [connectPacket.subarray(0, 1), connectPacket.subarray(1)],
        pauseMs: 500,
        then: 'end',
        timeoutMs: 15_000,
      });
      expect(statusOf(slowPost.response)).toBe(200);
      expect(bodyOf(slowPost.response)).toBe('ok');
      const polled = await poll;
      expect(statusOf(polled.response)).toBe(200);
      expect(bodyOf(polled.response)).toContain('BAD_REQUEST');
    });

    it("leaves engine.io's own answers to oversized POSTs, unknown sids, versions and transports", async () => {
      const { url } = child;
      // A 200 kB POST (over the 64 KiB message cap), an unknown sid, unsupported protocol versions
      // and an unknown transport: engine.io's own answers, untouched by the HTTP routes.
      const big = await fetch(
        `${url}${pollingPath({ EIO: '4', transport: 'polling', sid: await openPollingSession(url) })}`,
        {
          method: 'POST',
          headers: { 'content-type': 'text/plain;charset=UTF-8' },
          body: '4'.repeat(200_000),
        },
      ).catch(() => null);
      // Either answered 413, or the connection was cut while the body was still being sent.
      if (big !== null) expect(big.status).toBe(413);
      const unknownSid = await fetch(`${url}${pollingPath({ EIO: '4', transport: 'polling', sid: 'nope' })}`);
      expect(unknownSid.status).toBe(400);
      expect(await unknownSid.json()).toEqual({ code: 1, message: 'Session ID unknown' });
      for (const EIO of ['3', '5', 'x']) {
        const res = await fetch(`${url}${pollingPath({ EIO, transport: 'polling' })}`);
        expect(res.status, `EIO=${EIO}`).toBe(400);
        await res.body?.cancel();
      }
      const badTransport = await fetch(`${url}${pollingPath({ EIO: '4', transport: 'nope' })}`);
      expect(badTransport.status).toBe(400);
      expect(await badTransport.json()).toEqual({ code: 0, message: 'Transport unknown' });
    });

    it(`refuses most of ${FUZZ_REQUESTS} fuzzed polling requests without exiting`, async () => {
      const { url } = child;
      // Random methods, versions, transports, sids (live, dead, made up), query garbage, bodies
      // from empty to 200 kB, delivered whole, slowly or cut short.
      const sids = await Promise.all(Array.from({ length: 8 }, () => openPollingSession(url)));
      const cases = pollingFuzzCases(FUZZ_REQUESTS, 20261115, sids.length);
      const statuses = new Map<string, number>();
      for (let i = 0; i < cases.length; i += FUZZ_IN_FLIGHT) {
        const answered = await Promise.all(
          cases
            .slice(i, i + FUZZ_IN_FLIGHT)
            .map((fuzz) => sendPollingCase(port, fuzz, sids, { pauseMs: 150, stallMs: 1500 })),
        );
        for (const status of answered) {
          const key = status === null ? 'none' : String(status);
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
        }
        expect(child.child.exitCode, 'coordinator exited during the fuzz').toBeNull();
      }
      // Most variations are refused by engine.io with a status; long polls and stalled bodies are
      // left unanswered until the client gives up, which is what engine.io does with them.
      expect(statuses.get('400') ?? 0).toBeGreaterThan(FUZZ_REQUESTS / 4);
      console.info(
        `[transport] ${FUZZ_REQUESTS} raw polling requests -> ${JSON.stringify(Object.fromEntries(statuses))}`,
      );
    });

    it('answers bytes that are not HTTP and foreign WebSocket upgrades with 400 or a close', async () => {
      // Bytes that are not HTTP ('clientError'), and WebSocket upgrades: one outside engine.io's
      // path, one on it with a bad key, one with an unknown sid.
      const upgrade = (path: string, key: string) =>
        `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`;
      const goodKey = Buffer.from(randomBytes(16)).toString('base64');
      const raw = await Promise.all(
        [
          '\u0016\u0003\u0001 not http at all\r\n\r\n',
          upgrade('/dashboard', goodKey),
          upgrade(pollingPath({ EIO: '4', transport: 'websocket' }), 'not-a-key'),
          upgrade(pollingPath({ EIO: '4', transport: 'websocket', sid: 'nope' }), goodKey),
        ].map((head) =>
          rawRequest({ port, head, body: new Uint8Array(0), then: 'stall', timeoutMs: 10_000 }),
        ),
      );
      // Each is answered 400 or closed (engine.io destroys upgrades it does not own); none hangs.
      for (const { response, closedAfterMs } of raw) {
        const status = statusOf(response);
        expect(status === 400 || (status === null && closedAfterMs !== null), response).toBe(true);
      }
    });

    it('is still up afterwards, serving HTTP and new polling sessions, with nothing escaped to the process', async () => {
      const { url } = child;
      expect(child.child.exitCode).toBeNull();
      expect(child.child.signalCode).toBeNull();
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ ok: true });
      expect(await openPollingSession(url)).toMatch(/^[\w-]+$/);
      expect(crashLines(child.logs)).toEqual([]);
    });
  });

  it('devices on socket.io defaults (polling, then upgrade) and on polling alone complete a round', async () => {
    const { url } = child;
    await createTestTaskOverHttp(url, OPERATOR_TOKEN, {
      taskId: TASK,
      rounds: {
        goalCount: 4,
        overSelection: 1,
        minReports: 4,
        selectionTimeoutMs: 30_000,
        reportingDeadlineMs: 60_000,
        maxRounds: 1,
      },
    });
    worker = await startRoundLogWorker({ redis, prefix, stateDir });

    // Two stock clients (no transports option) and two that never leave long-polling.
    const setups: Array<{ label: string; transports: Array<'polling' | 'websocket'> | null }> = [
      { label: 'stock-0', transports: null },
      { label: 'stock-1', transports: null },
      { label: 'polling-0', transports: ['polling'] },
      { label: 'polling-1', transports: ['polling'] },
    ];
    const promoted = new Map<string, AdapterPromoted>();
    for (const { label, transports } of setups) {
      const d = new TestDevice(url, label);
      await registerDeviceOverHttp(url, OPERATOR_TOKEN, d);
      const ack = await d.connect({ transports });
      expect(ack.ok, `${label}: ${JSON.stringify(ack)}`).toBe(true);
      d.socket?.on('adapter:promoted', (p: AdapterPromoted) => promoted.set(label, p));
      devices.push(d);
    }
    const checkIns = await Promise.all(devices.map((d) => d.checkIn(TASK)));
    for (const ack of checkIns) expect(ack.ok).toBe(true);
    const plans = await Promise.all(devices.map((d) => d.waitForPlan(undefined, 30_000)));
    const acks = await Promise.all(
      devices.map((d, i) => d.report(plans[i] as RoundPlan, loraDelta(0.1 * (i + 1)))),
    );
    for (const ack of acks) expect(ack.ok, JSON.stringify(ack)).toBe(true);

    const keys = redisKeys(prefix);
    await waitFor(
      async () => (await redis.hget(keys.round(`${TASK}:1`), 'state')) === 'COMMITTED',
      45_000,
      'commit',
    );
    // Every device, whatever its transport, hears the promotion of version 1.
    await waitFor(() => promoted.size === devices.length, 15_000, 'adapter:promoted on every device');
    for (const p of promoted.values()) expect(p).toMatchObject({ taskId: TASK, version: 1 });
    // The stock clients upgraded to websocket; the polling-only ones stayed on long-polling.
    const transportOf = (d: TestDevice) => d.socket?.io.engine.transport.name;
    await waitFor(() => devices.slice(0, 2).every((d) => transportOf(d) === 'websocket'), 15_000, 'upgrade');
    expect(devices.slice(2).map(transportOf)).toEqual(['polling', 'polling']);
    expect(child.child.exitCode).toBeNull();
    expect(crashLines(child.logs)).toEqual([]);
  });
});
