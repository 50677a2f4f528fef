// The ingest section's floor: the same load (PUT the delta, then a signed `update:submit` over
// socket.io, 32 in flight) against a bare server doing only the work every coordinator must do
// per update (bench/children/transport-floor-child.ts). Its CPU per update is the limit ours is
// compared with.
import { randomBytes } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { z } from 'zod';
import { SIGNING_DOMAINS } from '@flotilla/protocol';
import { NativeSigner, putBlob, withConcurrency, type DeltaBlob } from './bench-device.js';
import { startTsChild, type BenchChild } from './child.js';
import { sleep } from './measure.js';

const SCRIPT = 'bench/children/transport-floor-child.ts';

/** What the floor server accepts as an update: metadata, its signature and the signer's key (base64). */
export const FloorSubmitSchema = z.object({
  metadata: z.record(z.string(), z.unknown()),
  signature: z.string(),
  publicKey: z.string(),
});

export interface TransportFloor {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startTransportFloor(): Promise<TransportFloor> {
  const child: BenchChild = startTsChild(SCRIPT, []);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const line = child.stdoutLines.find((l) => l.startsWith('FLOOR_READY '));
    if (line !== undefined)
      return {
        url: `http://127.0.0.1:${line.slice('FLOOR_READY '.length)}`,
        pid: child.pid,
        stop: () => child.stop(),
      };
    if (child.child.exitCode !== null || Date.now() > deadline) {
      await child.stop('SIGKILL');
      throw new Error(`transport floor did not start: ${child.stderr.join('').slice(-2000)}`);
    }
    await sleep(50);
  }
}

function connect(url: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

/**
 * One report per blob, `concurrency` at a time, each from its own connection and key; resolves
 * once every report was acked. `onReportingStart` runs after the connections are open.
 */
export async function runFloorLoad(options: {
  url: string;
  blobs: DeltaBlob[];
  concurrency: number;
  timeoutMs: number;
  onReportingStart?: () => void;
}): Promise<{ accepted: number; elapsedMs: number }> {
  const { url, blobs } = options;
  const deadline = Date.now() + options.timeoutMs;
  const signers = blobs.map(() => new NativeSigner(randomBytes(32)));
  const sockets = await Promise.all(blobs.map(() => connect(url)));
  try {
    options.onReportingStart?.();
    const t0 = performance.now();
    const results = await withConcurrency(blobs, options.concurrency, deadline, async (blob, i) => {
      await putBlob(`${url}/blobs/${blob.digest}`, blob.bytes, '');
      const metadata = { deviceId: `floor-${i}`, blobDigest: blob.digest, blobBytes: blob.bytes.length };
      const signer = signers[i] as NativeSigner;
      const ack = (await (sockets[i] as Socket).timeout(60_000).emitWithAck('update:submit', {
        metadata,
        signature: signer.sign(SIGNING_DOMAINS.update, metadata),
        publicKey: signer.publicKey,
      })) as { ok: boolean };
      return ack.ok;
    });
    const accepted = results.filter((r) => r?.status === 'fulfilled' && r.value).length;
    return { accepted, elapsedMs: performance.now() - t0 };
  } finally {
    for (const socket of sockets) socket.disconnect();
  }
}
