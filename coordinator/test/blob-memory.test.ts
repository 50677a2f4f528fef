// Issue 15: "Memory amplification: GET /blobs buffers whole blobs (24 paused GETs of a 32 MiB
// blob: RSS 151 → 910 MiB); update:submit reads and hashes the named blob before comparing its
// size with the metadata (20 submits naming a 32 MiB blob: +640 MiB)." Reproduced against a
// coordinator child process, whose resident set is read from /proc. The bounds are generous (a
// quarter of what buffering would cost at least); what they catch is growth with the blob size.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoundPlan } from '@flotilla/protocol';
import { CHILD_OPERATOR, startChildFleet, type ChildFleet, type TestDevice } from './support/index.js';

const MiB = 1024 ** 2;
const BLOB_BYTES = 32 * MiB;
const IDLE_MS = 3000;

interface PausedGet {
  socket: Socket;
  /** The first bytes the server sent (status line and headers), once they arrive. */
  head: Promise<string>;
  /** Resolves when the connection closed, with the bytes received in all. */
  closed: Promise<number>;
}

/** A GET on its own connection that reads the first chunk, then stops reading (the socket is paused). */
function pausedGet(url: string, path: string, token: string): PausedGet {
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  let received = 0;
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  const head = new Promise<string>((resolve) =>
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      resolve(chunk.subarray(0, 200).toString('latin1'));
    }),
  );
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(received)));
  socket.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${token}\r\n\r\n`);
  return { socket, head, closed };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)),
  ]);
}

/** Runs `during` while sampling the child's resident set; returns the largest growth seen, bytes. */
async function peakGrowth(fleet: ChildFleet, during: () => Promise<void>): Promise<number> {
  const before = fleet.memory();
  let peak = before.rss;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, fleet.memory().rss);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    await during();
  } finally {
    sampling = false;
    await sampler;
  }
  const after = fleet.memory();
  return Math.max(peak - before.rss, after.peak - before.peak);
}

describe('blob transfers and submissions do not amplify memory (real coordinator process)', () => {
  let fleet: ChildFleet;
  let taskId: string;
  let baseDigest: string;
  let devices: TestDevice[];
  const sockets: Socket[] = [];

  beforeAll(async () => {
    fleet = await startChildFleet({ extraArgs: ['--download-idle-timeout-ms', String(IDLE_MS)] });
    ({ taskId, baseDigest } = await fleet.createTask({ baseBytes: BLOB_BYTES }));
    devices = await fleet.connectDevices(3);
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await fleet.stop();
  });

  it('24 paused GETs of a 32 MiB blob: bounded growth, and each is closed after the idle timeout', async () => {
    let gets: PausedGet[] = [];
    const growth = await peakGrowth(fleet, async () => {
      gets = Array.from({ length: 24 }, () => pausedGet(fleet.url, `/blobs/${baseDigest}`, CHILD_OPERATOR));
      sockets.push(...gets.map((g) => g.socket));
      const heads = await within(Promise.all(gets.map((g) => g.head)), 30_000, 'the 24 answers');
      for (const head of heads) expect(head).toMatch(/^HTTP\/1\.1 200/);
      // The server has answered every request; give it time to buffer whatever it would.
      await new Promise((r) => setTimeout(r, 1500));
    });
    console.info(`[blob-memory] 24 paused GETs of 32 MiB: RSS +${(growth / MiB).toFixed(1)} MiB`);
    // Buffering the blob per request costs 24 × 32 = 768 MiB.
    expect(growth).toBeLessThan((24 * BLOB_BYTES) / 4);
    // A paused socket does not notice the server closing it: read on once the idle timeout has
    // passed. The server cut each transfer: far less than the blob arrives before the close.
    await new Promise((r) => setTimeout(r, IDLE_MS + 1000));
    for (const g of gets) g.socket.resume();
    const received = await within(Promise.all(gets.map((g) => g.closed)), 30_000, 'idle GETs closed');
    for (const bytes of received) expect(bytes).toBeLessThan(BLOB_BYTES / 2);
  });

  it('one device gets 4 concurrent transfers; the rest are answered 429 with retry-after', async () => {
    const token = (devices[0] as TestDevice).session?.sessionToken ?? '';
    const gets = Array.from({ length: 8 }, () => pausedGet(fleet.url, `/blobs/${baseDigest}`, token));
    sockets.push(...gets.map((g) => g.socket));
    const heads = await within(Promise.all(gets.map((g) => g.head)), 30_000, 'the 8 answers');
    expect(heads.filter((h) => /^HTTP\/1\.1 200/.test(h))).toHaveLength(4);
    const refused = heads.filter((h) => /^HTTP\/1\.1 429/.test(h));
    expect(refused).toHaveLength(4);
    for (const head of refused) expect(head.toLowerCase()).toContain('retry-after: 1');
    for (const g of gets) g.socket.destroy();
  });

  it('20 submits naming a 32 MiB blob are refused without reading it', async () => {
    const plans = await fleet.select(devices, taskId);
    const device = devices[0] as TestDevice;
    const plan = plans[0] as RoundPlan;
    const small = new Uint8Array(1000);
    let codes: string[] = [];
    const growth = await peakGrowth(fleet, async () => {
      const acks = await Promise.all(
        Array.from({ length: 20 }, () =>
          device.submit(device.metadata(plan, small, { blobDigest: baseDigest, blobBytes: small.length })),
        ),
      );
      codes = acks.map((ack) => (ack.ok ? 'ok' : ack.error.code));
    });
    console.info(`[blob-memory] 20 submits naming a 32 MiB blob: RSS +${(growth / MiB).toFixed(1)} MiB`);
    expect(new Set(codes)).toEqual(new Set(['BLOB_MISSING']));
    // Reading and hashing the blob per submission costs 20 × 32 = 640 MiB.
    expect(growth).toBeLessThan((20 * BLOB_BYTES) / 4);
  });
});
