import { randomBytes } from 'node:crypto';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ERROR_CODES,
  SIGNING_DOMAINS,
  sha256Hex,
  signPayload,
  toBase64,
  at,
  type Ack,
  type RoundPlan,
  type SigningKeyPair,
} from '@flotilla/protocol';
import { loadOrCreateCoordinatorKey } from '../src/shared/coordinator-key.js';
import { readRoundLog } from '../src/shared/round-log/index.js';
import {
  challenged,
  createTestTaskOverHttp,
  fuzzMessages,
  loraDelta,
  OPERATOR_TOKEN,
  openSocket,
  ProcessCluster,
  rawRequest,
  registerDeviceOverHttp,
  residentBytes,
  TestDevice,
  verifyStoredLog,
  waitFor,
} from './support/index.js';
import type { ChildCoordinator } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

const TASK = 'abuse-task';
const FUZZ_CONNECTIONS = 20;
const FUZZ_MESSAGES = 10_000;
const UPLOAD_IDLE_MS = 1500;
const KNOWN_CODES = new Set<string>(ERROR_CODES);

const codeOf = (ack: Ack<unknown>) => (ack.ok ? 'OK' : ack.error.code);

/** Sends `messages` over `sockets`, `batch` at a time per socket with a pause between batches. */
async function fuzz(sockets: Socket[], messages: ReturnType<typeof fuzzMessages>) {
  const codes = new Map<string, number>();
  let unanswered = 0;
  let okAcks = 0;
  const perSocket = Math.ceil(messages.length / sockets.length);
  await Promise.all(
    sockets.map(async (socket, s) => {
      const mine = messages.slice(s * perSocket, (s + 1) * perSocket);
      for (let i = 0; i < mine.length; i += 50) {
        const acks = await Promise.all(
          mine.slice(i, i + 50).map(async (m) => {
            try {
              return (await socket
                .timeout(PATIENCE_MS)
                .emitWithAck(m.event, m.payload, ...m.extra)) as Ack<unknown>;
            } catch {
              return null;
            }
          }),
        );
        for (const ack of acks) {
          if (ack === null) unanswered++;
          else if (ack.ok) okAcks++;
          else codes.set(ack.error.code, (codes.get(ack.error.code) ?? 0) + 1);
        }
        await new Promise((r) => setTimeout(r, 400));
      }
    }),
  );
  return { codes, unanswered, okAcks };
}

// Abuse from enrolled-but-hostile devices and strangers while four honest devices run a round
// against a coordinator child process. Everything is refused with a reason, the coordinator's
// memory stays bounded and the honest round commits. The fuzzing starts with the round and runs
// under every other abuse below; the tests run in order, one kind of abuse each.
describe('chaos: abuse during an honest round', () => {
  const cluster = new ProcessCluster('chaos-abuse');
  const { redis, prefix, keys } = cluster;
  const sockets: Socket[] = [];
  let honest: TestDevice[] = [];
  let child: ChildCoordinator | null = null;
  let started = 0;
  let port = 0;
  let url = '';
  let signingKey: SigningKeyPair;
  let plans: RoundPlan[] = [];
  let attackers: TestDevice[] = [];
  let rssBefore = 0;
  /** h0's signed update, replayed by an attacker, then submitted by h0 itself. */
  let h0Metadata: ReturnType<TestDevice['metadata']>;
  let fuzzing: ReturnType<typeof fuzz>;
  const goodBlob = loraDelta(0.2);
  const small = new Uint8Array(randomBytes(1000));
  const honestDevice = (i: number): TestDevice => at(honest, i);
  /** A raw PUT of `length` bytes to `digest` under the session of h2 (selected, reports later). */
  const head = (digest: string, length: number) =>
    `PUT /blobs/${digest} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${honestDevice(2).session?.sessionToken ?? ''}\r\n` +
    `content-type: application/octet-stream\r\ncontent-length: ${length}\r\n\r\n`;
  // Read in the last test's summary line.
  let stalls: Awaited<ReturnType<typeof rawRequest>>[] = [];
  let rateLimitedClosures = 0;
  let keyedConnected = 0;
  let fuzzed: Awaited<ReturnType<typeof fuzz>>;
  let rssAfterAbuse = 0;

  beforeAll(async () => {
    started = Date.now();
    child = await cluster.startCoordinator(['--upload-idle-timeout-ms', String(UPLOAD_IDLE_MS)]);
    port = child.port;
    url = child.url;
    await createTestTaskOverHttp(url, OPERATOR_TOKEN, {
      taskId: TASK,
      rounds: {
        goalCount: 4,
        overSelection: 1,
        minReports: 3,
        selectionTimeoutMs: 60_000,
        reportingDeadlineMs: 80_000,
        retryAfterMs: 5_000,
        maxRounds: 1,
      },
    });
    signingKey = loadOrCreateCoordinatorKey(cluster.stateDir);
    await cluster.startWorker();

    // Four honest devices, selected for round 1.
    honest = await cluster.enrollAndConnect('honest', 4, url);
    await Promise.all(honest.map((d) => d.checkIn(TASK)));
    plans = await Promise.all(honest.map((d) => d.waitForPlan()));

    // Hostile but enrolled identities: FUZZ_CONNECTIONS fuzzers, m0 and one to flood with.
    attackers = Array.from({ length: FUZZ_CONNECTIONS + 2 }, (_, i) => new TestDevice(url, `mallory-${i}`));
    for (const a of attackers) await registerDeviceOverHttp(url, OPERATOR_TOKEN, a);
    for (const a of attackers.slice(0, FUZZ_CONNECTIONS + 1)) expect((await a.connect()).ok).toBe(true);
    rssBefore = await residentBytes(child.pid);

    // 10,000 fuzzed messages over 20 authenticated connections, while the honest round runs.
    fuzzing = fuzz(
      attackers
        .slice(0, FUZZ_CONNECTIONS)
        .map((a) => a.socket)
        .filter((s): s is Socket => s !== null),
      fuzzMessages(FUZZ_MESSAGES, 20261122),
    );
  });

  afterAll(async () => {
    for (const s of sockets) s.disconnect();
    await cluster.stop();
  });

  it('refuses forged and replayed signatures, and updates replayed or signed by another key', async () => {
    const [h0, h1, h2] = [honestDevice(0), honestDevice(1), honestDevice(2)];
    const m0 = at(attackers, FUZZ_CONNECTIONS);
    const impostor = new TestDevice(url, h0.deviceId);
    const forgedKey = new TestDevice(url, 'x').keys.secretKey;
    expect(codeOf(await impostor.connect({ signWith: forgedKey }))).toBe('BAD_SIGNATURE');
    // A challenge answer captured earlier (another nonce), replayed on a new connection.
    const replayer = openSocket(url, h1.deviceId, null);
    sockets.push(replayer.socket);
    expect(await challenged(replayer.socket)).toBe(true);
    const stale = signPayload(
      SIGNING_DOMAINS.authChallenge,
      { deviceId: h1.deviceId, nonce: 'f'.repeat(64), coordinatorKey: toBase64(signingKey.publicKey) },
      h1.keys.secretKey,
    );
    const replayed = (await replayer.socket
      .timeout(PATIENCE_MS)
      .emitWithAck('auth:response', { signature: stale })) as Ack<unknown>;
    expect(codeOf(replayed)).toBe('BAD_SIGNATURE');
    expect((await h0.upload(goodBlob)).status).toBe(201);
    h0Metadata = h0.metadata(at(plans, 0), goodBlob);
    const h0Signature = signPayload(SIGNING_DOMAINS.update, h0Metadata, h0.keys.secretKey);
    // The honest device's signed update, replayed by an attacker as is, and re-addressed.
    expect(codeOf(await m0.emit('update:submit', { metadata: h0Metadata, signature: h0Signature }))).toBe(
      'FORBIDDEN',
    );
    expect(
      codeOf(
        await m0.emit('update:submit', {
          metadata: { ...h0Metadata, deviceId: m0.deviceId },
          signature: h0Signature,
        }),
      ),
    ).toBe('NOT_SELECTED');
    // A selected device's update signed with the wrong key.
    expect(codeOf(await h2.submit(h2.metadata(at(plans, 2), goodBlob), forgedKey))).toBe('BAD_SIGNATURE');
  });

  it('refuses oversized, mismatched and truncated blobs, and uploads from an identity no round selected', async () => {
    const m0 = at(attackers, FUZZ_CONNECTIONS);
    const h3 = honestDevice(3);
    const intruder = await fetch(`${url}/blobs/${sha256Hex(goodBlob)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${m0.session?.sessionToken ?? ''}` },
      body: Buffer.from(goodBlob),
    });
    expect(intruder.status).toBe(403);
    // A selected device's session (h2, which reports later) tries the rest.
    const token = honestDevice(2).session?.sessionToken ?? '';
    const big = new Uint8Array(randomBytes(10_000));
    const declared = await fetch(`${url}/blobs/${sha256Hex(big)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}` },
      body: big,
    });
    expect(declared.status).toBe(413);
    const chunked = await fetch(`${url}/blobs/${sha256Hex(big)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}` },
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < 10; i++) controller.enqueue(big.subarray(i * 1000, (i + 1) * 1000));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    const mismatch = await fetch(`${url}/blobs/${'0'.repeat(64)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}` },
      body: small,
    });
    expect(mismatch.status).toBe(400);
    const truncated = await rawRequest({
      port,
      head: head(sha256Hex(small), 1000),
      body: small.subarray(0, 400),
      then: 'end',
      timeoutMs: 10_000,
    });
    expect(truncated.closedAfterMs).not.toBeNull();
    expect(truncated.response).toMatch(/^HTTP\/1\.1 400/);
    expect(
      (
        await fetch(`${url}/blobs/${sha256Hex(small)}`, {
          method: 'HEAD',
          headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
        })
      ).status,
    ).toBe(404);
    // A truncated safetensors file that hashes correctly is stored, then refused at submission.
    const cut = goodBlob.subarray(0, goodBlob.length - 7);
    expect((await h3.upload(cut)).status).toBe(201);
    expect(codeOf(await h3.submit(h3.metadata(at(plans, 3), cut)))).toBe('CORRUPT_FILE');
  });

  it('answers uploads that never finish 408 after the idle timeout, and a fifth transfer of one device 429', async () => {
    stalls = await Promise.all(
      Array.from({ length: 10 }, () =>
        rawRequest({
          port,
          head: head(sha256Hex(small), 1000),
          body: small.subarray(0, 10),
          then: 'stall',
          timeoutMs: 20_000,
        }),
      ),
    );
    const timedOut = stalls.filter((stall) => /^HTTP\/1\.1 408/.test(stall.response));
    expect(timedOut).toHaveLength(4);
    for (const stall of timedOut) {
      expect(stall.closedAfterMs).toBeGreaterThanOrEqual(UPLOAD_IDLE_MS - 50);
      expect(stall.closedAfterMs).toBeLessThan(UPLOAD_IDLE_MS + 5000);
    }
    for (const stall of stalls.filter((s) => !timedOut.includes(s))) {
      expect(stall.response).toMatch(/^HTTP\/1\.1 429/);
      expect(stall.closedAfterMs).not.toBeNull();
    }
  });

  it('bounds floods of connections under one identity, unanswered and authenticated', async () => {
    const h0 = honestDevice(0);
    const flooded = at(attackers, FUZZ_CONNECTIONS + 1);
    // 200 sockets claiming an honest device's id, never answering: at most 4 stay pending.
    const unanswered = Array.from({ length: 200 }, () => openSocket(url, h0.deviceId, null));
    sockets.push(...unanswered.map((u) => u.socket));
    await Promise.all(unanswered.map((u) => challenged(u.socket)));
    await waitFor(
      () => unanswered.filter((u) => u.socket.connected).length <= 4,
      PATIENCE_MS,
      'pending bound',
    );
    rateLimitedClosures = unanswered.filter((u) =>
      u.errors.some((e) => (e as { code?: string }).code === 'RATE_LIMITED'),
    ).length;
    expect(rateLimitedClosures).toBeGreaterThanOrEqual(196);
    // 200 sockets of one attacker that does hold its key: only the newest authenticated one stays.
    const keyed = Array.from({ length: 200 }, () =>
      openSocket(url, flooded.deviceId, flooded.keys.secretKey),
    );
    sockets.push(...keyed.map((k) => k.socket));
    await Promise.all(keyed.map((k) => k.authenticated));
    await waitFor(
      () => keyed.filter((k) => k.socket.connected).length <= 1,
      PATIENCE_MS,
      'authenticated bound',
    );
    keyedConnected = keyed.filter((k) => k.socket.connected).length;
    // The honest device under attack kept its connection throughout.
    expect(h0.socket?.connected).toBe(true);
  });

  it('answered every fuzzed message with a known refusal, none accepted, and memory stayed bounded', async () => {
    fuzzed = await fuzzing;
    rssAfterAbuse = await residentBytes(child?.pid ?? 0);
    expect(fuzzed.unanswered).toBe(0);
    expect(fuzzed.okAcks).toBe(0);
    const total = [...fuzzed.codes.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(FUZZ_MESSAGES);
    for (const code of fuzzed.codes.keys()) expect(KNOWN_CODES.has(code), code).toBe(true);
    expect(fuzzed.codes.get('BAD_REQUEST') ?? 0).toBeGreaterThan(1000);
    // Schema-valid fuzz reached the handlers behind validation.
    for (const code of ['NOT_FOUND', 'FORBIDDEN', 'ROUND_CLOSED'])
      expect(fuzzed.codes.get(code) ?? 0, code).toBeGreaterThan(0);
    const growth = rssAfterAbuse - rssBefore;
    expect(growth).toBeLessThan(150 * 1024 ** 2);
  });

  it('commits the honest round, whose log records the refusals and verifies', async () => {
    const h0 = honestDevice(0);
    // h2 and h3 were refused for final reasons (BAD_SIGNATURE, CORRUPT_FILE), so they count as
    // answered: they report again before h0 and h1 do, or the round would close without them.
    const resent = await Promise.all([
      honestDevice(2).report(at(plans, 2), loraDelta(0.4)),
      honestDevice(3).report(at(plans, 3), loraDelta(0.5)),
    ]);
    // h0's update stored earlier, and h1's report.
    const acks = [
      ...resent,
      ...(await Promise.all([h0.submit(h0Metadata), honestDevice(1).report(at(plans, 1), loraDelta(0.3))])),
    ];
    for (const ack of acks) expect(codeOf(ack)).toBe('OK');
    await waitFor(
      async () => (await redis.hget(keys.round(`${TASK}:1`), 'state')) === 'COMMITTED',
      30_000,
      'commit',
    );
    const records = await readRoundLog(redis, prefix);
    const refusals = records.flatMap((r) => (r.event.type === 'update.refused' ? [r.event.reason] : []));
    expect(refusals).toEqual(expect.arrayContaining(['BAD_SIGNATURE', 'CORRUPT_FILE']));
    const verdict = await verifyStoredLog(redis, prefix, { trustedKey: toBase64(signingKey.publicKey) });
    expect(verdict.problems).toEqual([]);
    console.info(
      `[chaos] abuse: ${FUZZ_MESSAGES} fuzz msgs over ${FUZZ_CONNECTIONS} sockets -> ` +
        `${JSON.stringify(Object.fromEntries(fuzzed.codes))}; 10 stalled PUTs closed in ` +
        `${Math.min(...stalls.map((s) => s.closedAfterMs ?? 0))}-${Math.max(...stalls.map((s) => s.closedAfterMs ?? 0))} ms; ` +
        `200-socket floods: ${rateLimitedClosures} pending closed RATE_LIMITED, ` +
        `${keyedConnected} authenticated left; ` +
        `RSS ${(rssBefore / 2 ** 20).toFixed(1)} -> ${(rssAfterAbuse / 2 ** 20).toFixed(1)} MiB; ` +
        `round committed; ${Date.now() - started} ms`,
    );
  });
});
