// Issue 15 (low): coordinator.close() resolved while the round-log mirror was still being written
// (a fresh CI run failed with ENOTEMPTY removing the audit folder), and it waited as long as a
// silent TCP client liked (a stalled upload held it for its 30 s idle timeout). Now close()
// returns with the JSONL mirror holding the whole stream, writes nothing under stateDir
// afterwards, and destroys connections still open after a short grace period.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { SigningKeyPair } from '@flotilla/protocol';
import { loadOrCreateCoordinatorKey } from '../src/shared/coordinator-key.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { defaultRoundLogPath, openRoundLog, readRoundLogLines } from '../src/shared/round-log/index.js';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import {
  createTestTask,
  startCoordinatorProcess,
  startTestCoordinator,
  TestDevice,
} from './support/index.js';
import type { ChildCoordinator } from './support/index.js';

const OPERATOR = 'operator-token-for-tests-0123456789';
/** A bound for "promptly" on a loaded machine; the old close() took 30 s or never returned. */
const CLOSE_BOUND_MS = 15_000;

/**
 * Appends `count` records to the round log under `prefix` from another writer (as another
 * coordinator process or a worker would), whose own mirror is elsewhere: the coordinator's
 * JSONL mirror now lags the stream by `count` lines.
 */
async function appendFromElsewhere(redis: Redis, prefix: string, signingKey: SigningKeyPair, count: number) {
  const elsewhere = mkdtempSync(join(tmpdir(), 'flotilla-other-writer-'));
  const writer = openRoundLog({
    redis,
    prefix,
    filePath: join(elsewhere, 'round-log.jsonl'),
    signingKey,
    pseudonymSecret: new Uint8Array(randomBytes(32)),
  });
  for (let i = 1; i <= count; i++)
    await writer.append({
      type: 'round.abandoned',
      taskId: 'other-task',
      roundId: `other-task:${i}`,
      accepted: 0,
      minReports: 1,
      reason: 'appended by another writer',
    });
  rmSync(elsewhere, { recursive: true, force: true });
}

/** The JSONL mirror's lines, and the stream's. */
async function mirrorAndStream(redis: Redis, prefix: string, stateDir: string) {
  const file = readFileSync(defaultRoundLogPath(stateDir), 'utf8');
  const stream = await readRoundLogLines(redis, prefix, -1);
  // Tree-head lines sit between the records (a transparency log); count only records.
  const records = stream.filter(({ line }) => 'event' in (JSON.parse(line) as object)).length;
  return { mirror: file, stream: stream.map(({ line }) => `${line}\n`).join(''), records };
}

/** A raw TCP connection to the coordinator that sends `bytes` and then nothing. */
async function silentClient(port: number, bytes: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  if (bytes) socket.write(bytes);
  return { socket, closed };
}

describe('coordinator.close()', () => {
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  const sockets: Socket[] = [];
  const children: ChildCoordinator[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    for (const child of children) await child.kill();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    redis.disconnect();
  });

  it('resolves with the JSONL mirror holding the whole stream, and writes nothing after', async () => {
    const tc = await startTestCoordinator();
    const { coordinator, stateDir } = tc;
    await createTestTask(coordinator);
    await appendFromElsewhere(redis, coordinator.prefix, coordinator.coordinatorKey, 200);
    await coordinator.close();
    const { mirror, stream, records } = await mirrorAndStream(redis, coordinator.prefix, stateDir);
    expect(records).toBeGreaterThanOrEqual(200);
    expect(mirror).toBe(stream);
    expect(existsSync(`${defaultRoundLogPath(stateDir)}.lock`)).toBe(false);
    // What failed in CI: removing the state directory right after close().
    rmSync(stateDir, { recursive: true });
    await new Promise((r) => setTimeout(r, 500));
    expect(existsSync(stateDir)).toBe(false);
  });

  it('destroys connections that would hold it open once the grace period is over', async () => {
    const tc = await startTestCoordinator({ closeGraceMs: 500 });
    dirs.push(tc.stateDir);
    const { port } = tc.coordinator;
    const clients = await Promise.all([
      // Connected, never a byte.
      silentClient(port, ''),
      // Half a request head.
      silentClient(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n'),
      // An upload that stalls after 3 of 1000 bytes (its idle timeout is 30 s).
      silentClient(
        port,
        `PUT /blobs/${'a'.repeat(64)} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${OPERATOR}\r\n` +
          'Content-Length: 1000\r\n\r\nabc',
      ),
      // An idle keep-alive connection after a complete request.
      silentClient(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'),
    ]);
    sockets.push(...clients.map((c) => c.socket));
    // And a device on a WebSocket.
    const device = new TestDevice(tc.coordinator.url, 'closing-0');
    await tc.coordinator.devices.registerDevice({ deviceId: device.deviceId, publicKey: device.publicKey });
    expect((await device.connect()).ok).toBe(true);
    await new Promise((r) => setTimeout(r, 300));

    const started = Date.now();
    await tc.coordinator.close();
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(CLOSE_BOUND_MS);
    await Promise.all(clients.map((c) => c.closed));
    expect(device.socket?.connected).toBe(false);
    console.info(
      `[shutdown] close() with 4 silent/stalled connections and a device: ${elapsed} ms (grace 500 ms)`,
    );
  });

  it('a SIGTERMed coordinator process exits promptly with a complete mirror despite a silent client', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'flotilla-sigterm-'));
    dirs.push(stateDir);
    const prefix = uniquePrefix('sigterm');
    const signingKey = loadOrCreateCoordinatorKey(stateDir);
    const child = await startCoordinatorProcess({ prefix, stateDir, operatorToken: OPERATOR });
    const { port } = child;
    children.push(child);
    await appendFromElsewhere(redis, prefix, signingKey, 50);
    const silent = await silentClient(port, '');
    sockets.push(silent.socket);
    const exited = new Promise<number | null>((resolve) => child.child.once('exit', resolve));
    const started = Date.now();
    process.kill(child.pid, 'SIGTERM');
    const code = await Promise.race([
      exited,
      new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), CLOSE_BOUND_MS)),
    ]);
    expect(code).toBe(0);
    console.info(`[shutdown] SIGTERM to exit with a silent client: ${Date.now() - started} ms`);
    const { mirror, stream, records } = await mirrorAndStream(redis, prefix, stateDir);
    expect(records).toBe(50);
    expect(mirror).toBe(stream);
  });
});
