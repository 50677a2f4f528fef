// A raw protocol device for load generation (after coordinator/test/support/device-protocol.ts):
// socket.io handshake + challenge, check-in, HTTP blob upload, signed update submission. Signing
// goes through node:crypto so that thousands of simulated devices do not measure tweetnacl in the
// load generator.
import { createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { Agent, request } from 'node:http';
import { io, type Socket } from 'socket.io-client';
import {
  PROTOCOL_VERSION,
  SIGNING_DOMAINS,
  domainDigest,
  toBase64,
  type Ack,
  type AuthChallenge,
  type AuthResult,
  type RoundClosed,
  type RoundPlan,
  type SigningDomain,
  type UpdateMetadata,
} from '@flotilla/protocol';
import { standInUpdateMetadata } from '../../coordinator/test/support/update-metadata.js';

/**
 * Connections kept open between the uploads of all bench devices in this process, as fetch's
 * pool did: a new TCP connection per upload costs the coordinator about 1 ms more per update.
 */
const UPLOAD_AGENT = new Agent({ keepAlive: true, maxSockets: 128 });

/** DER prefix of an ed25519 PKCS#8 private key (RFC 8410); the 32-byte seed follows it. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An ed25519 signer equivalent to `signPayload` (ed25519 signatures are deterministic). */
export class NativeSigner {
  private readonly key: KeyObject;
  readonly publicKey: string;

  constructor(seed: Uint8Array) {
    this.key = createPrivateKey({
      key: Buffer.concat([PKCS8_ED25519_PREFIX, Buffer.from(seed)]),
      format: 'der',
      type: 'pkcs8',
    });
    const spki = createPublicKey(this.key).export({ format: 'der', type: 'spki' });
    this.publicKey = toBase64(new Uint8Array(spki.subarray(spki.length - 32)));
  }

  sign(domain: SigningDomain, payload: unknown): string {
    return toBase64(new Uint8Array(cryptoSign(null, domainDigest(domain, payload), this.key)));
  }
}

/** A delta file ready to upload: safetensors bytes, their SHA-256 (hex) and global L2 norm. */
export interface DeltaBlob {
  bytes: Uint8Array;
  digest: string;
  norm: number;
}

export interface PromotedEvent {
  taskId: string;
  version: number;
  manifestDigest: string;
}

export class BenchDevice {
  socket: Socket | null = null;
  session: AuthResult | null = null;
  readonly plans: RoundPlan[] = [];
  /** performance.now() at each `round:closed` and `adapter:promoted` this device received. */
  readonly closed: Array<{ at: number; event: RoundClosed }> = [];
  readonly promoted: Array<{ at: number; event: PromotedEvent }> = [];

  constructor(
    readonly url: string,
    readonly deviceId: string,
    readonly signer: NativeSigner,
  ) {}

  /** Connects and answers the challenge; rejects on refusal or after `timeoutMs`. */
  connect(timeoutMs = 30_000): Promise<void> {
    const socket = io(this.url, {
      auth: { deviceId: this.deviceId, protocolVersion: PROTOCOL_VERSION },
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: timeoutMs,
    });
    this.socket = socket;
    socket.on('round:plan', (plan: RoundPlan) => this.plans.push(plan));
    socket.on('round:closed', (event: RoundClosed) => this.closed.push({ at: performance.now(), event }));
    socket.on('adapter:promoted', (event: PromotedEvent) =>
      this.promoted.push({ at: performance.now(), event }),
    );
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.deviceId}: connect timed out`)), timeoutMs);
      socket.once('auth:challenge', (challenge: AuthChallenge) => {
        const signature = this.signer.sign(SIGNING_DOMAINS.authChallenge, {
          deviceId: this.deviceId,
          nonce: challenge.nonce,
          coordinatorKey: challenge.coordinatorKey,
        });
        (
          socket.timeout(timeoutMs).emitWithAck('auth:response', { signature }) as Promise<Ack<AuthResult>>
        ).then(
          (ack) => {
            clearTimeout(timer);
            if (!ack.ok) return reject(new Error(`${this.deviceId}: ${ack.error.code} ${ack.error.message}`));
            this.session = ack.data;
            resolve();
          },
          (error: unknown) => {
            clearTimeout(timer);
            reject(error instanceof Error ? error : new Error(String(error)));
          },
        );
      });
      socket.once('connect_error', (error: Error) => {
        clearTimeout(timer);
        reject(new Error(`${this.deviceId}: connect_error ${error.message}`));
      });
    });
  }

  async emit<T>(event: string, payload: unknown, timeoutMs = 60_000): Promise<Ack<T>> {
    if (this.socket === null) throw new Error(`${this.deviceId}: not connected`);
    return (await this.socket.timeout(timeoutMs).emitWithAck(event, payload)) as Ack<T>;
  }

  checkIn(taskId: string): Promise<Ack<{ status: string }>> {
    return this.emit('checkin', {
      taskId,
      eligibility: { charging: true, unmeteredNetwork: true, freeStorageBytes: 1e10, computeClass: 'medium' },
      budget: { maxSeconds: 600, maxBytes: 1e9 },
      adapterVersion: 0,
    });
  }

  async upload(bytes: Uint8Array, digest: string): Promise<void> {
    try {
      await putBlob(`${this.url}/blobs/${digest}`, bytes, this.session?.sessionToken ?? '');
    } catch (error) {
      throw new Error(`${this.deviceId}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  metadata(plan: RoundPlan, bytes: Uint8Array, digest: string, norm: number): UpdateMetadata {
    return standInUpdateMetadata({
      plan,
      deviceId: this.deviceId,
      bytes,
      numExamples: 32,
      reportedNorm: norm,
      blobDigest: digest,
    });
  }

  /**
   * Uploads the blob and submits it for `plan`. Returns the submit ack, the timings (ms) of the
   * whole report (upload + submit) and of the `update:submit` round trip alone, and when it was acked.
   */
  async report(
    plan: RoundPlan,
    blob: DeltaBlob,
  ): Promise<{ ack: Ack<unknown>; reportMs: number; submitMs: number; ackedAt: number }> {
    const { bytes, digest, norm } = blob;
    const t0 = performance.now();
    await this.upload(bytes, digest);
    const metadata = this.metadata(plan, bytes, digest, norm);
    const t1 = performance.now();
    const ack = await this.emit('update:submit', {
      metadata,
      signature: this.signer.sign(SIGNING_DOMAINS.update, metadata),
    });
    const ackedAt = performance.now();
    return { ack, reportMs: ackedAt - t0, submitMs: ackedAt - t1, ackedAt };
  }

  disconnect(): void {
    this.socket?.disconnect();
    this.socket = null;
  }
}

/**
 * PUTs `bytes` to `url` over node:http with the shared keep-alive agent (fetch costs the load
 * generator twice the CPU per upload); rejects unless answered 200 or 201. A pooled socket the
 * server closed while it sat idle (past the server's keep-alive timeout, 5 s: between two of the
 * bench's rounds) fails the request that reuses it at that moment with "socket hang up"; that
 * request is sent once more on a new socket, as Node's documentation advises (the PUT is
 * idempotent: a blob is stored by its digest). The client library retries network errors too.
 */
export async function putBlob(url: string, bytes: Uint8Array, token: string): Promise<void> {
  try {
    await putOnce(url, bytes, token);
  } catch (error) {
    if (!(error instanceof ReusedSocketClosed)) throw error;
    uploadRetries += 1;
    await putOnce(url, bytes, token);
  }
}

/** Uploads sent again after their pooled socket turned out closed (see putBlob). */
export let uploadRetries = 0;

class ReusedSocketClosed extends Error {}

function putOnce(url: string, bytes: Uint8Array, token: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'PUT',
        agent: UPLOAD_AGENT,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/octet-stream',
          'content-length': bytes.length,
        },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (chunk: Buffer) => parts.push(chunk));
        res.on('end', () => {
          if (res.statusCode === 201 || res.statusCode === 200) resolve();
          else reject(new Error(`upload ${res.statusCode ?? '?'} ${Buffer.concat(parts).toString()}`));
        });
        res.on('error', reject);
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      const closedUnderUs =
        req.reusedSocket && (error.code === 'ECONNRESET' || error.message === 'socket hang up');
      reject(closedUnderUs ? new ReusedSocketClosed(error.message, { cause: error }) : error);
    });
    req.end(bytes);
  });
}

/** Runs `work` over `items` with at most `limit` in flight; stops starting new items after `deadline`. */
export async function withConcurrency<T, R>(
  items: readonly T[],
  limit: number,
  deadline: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<Array<PromiseSettledResult<R> | undefined>> {
  const results: Array<PromiseSettledResult<R> | undefined> = new Array<undefined>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length && Date.now() < deadline) {
      const index = next++;
      const item = items[index] as T;
      try {
        results[index] = { status: 'fulfilled', value: await work(item, index) };
      } catch (reason) {
        results[index] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
