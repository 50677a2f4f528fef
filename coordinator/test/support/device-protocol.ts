// The device side of docs/protocol.md (answer the challenge, check in, wait for a plan, upload,
// describe and sign an update), shared by the test devices: TestDevice talks to one coordinator,
// FailoverDevice to several.
import nacl from 'tweetnacl';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import {
  PROTOCOL_VERSION,
  SIGNING_DOMAINS,
  sha256Hex,
  signPayload,
  toBase64,
  type Ack,
  type AuthChallenge,
  type AuthResult,
  type CheckIn,
  type RoundClosed,
  type RoundPlan,
  type SigningKeyPair,
  type UpdateMetadata,
} from '@flotilla/protocol';
import { PATIENCE_MS } from '../../../test-support/patience.js';
import { standInUpdateMetadata } from './update-metadata.js';

export const ELIGIBLE: Omit<CheckIn, 'taskId'> = {
  eligibility: { charging: true, unmeteredNetwork: true, freeStorageBytes: 1e9, computeClass: 'medium' },
  budget: { maxSeconds: 60, maxBytes: 1e7 },
  adapterVersion: 0,
};

export abstract class ProtocolDevice {
  socket: Socket | null = null;
  session: AuthResult | null = null;
  readonly plans: RoundPlan[] = [];
  readonly closed: RoundClosed[] = [];

  constructor(
    readonly deviceId: string,
    /** The device's identity; pass another device's keys to open a second connection as it. */
    readonly keys: SigningKeyPair = nacl.sign.keyPair(),
  ) {}

  /** The coordinator the device talks to now. */
  abstract get url(): string;

  get publicKey(): string {
    return toBase64(this.keys.publicKey);
  }

  /** A socket to `url` with the handshake's auth, collecting the plans and closes it is sent. */
  protected openSocket(url: string, options: Partial<ManagerOptions & SocketOptions>): Socket {
    const socket = io(url, {
      auth: { deviceId: this.deviceId, protocolVersion: PROTOCOL_VERSION },
      ...options,
    });
    socket.on('round:plan', (plan: RoundPlan) => this.plans.push(plan));
    socket.on('round:closed', (c: RoundClosed) => this.closed.push(c));
    return socket;
  }

  /** Signs the server's challenge with `secretKey` (another key forges) and sends the answer. */
  protected answerChallenge(
    socket: Socket,
    challenge: AuthChallenge,
    secretKey: Uint8Array,
  ): Promise<Ack<AuthResult>> {
    const signature = signPayload(
      SIGNING_DOMAINS.authChallenge,
      { deviceId: this.deviceId, nonce: challenge.nonce, coordinatorKey: challenge.coordinatorKey },
      secretKey,
    );
    return emitWithAck<AuthResult>(socket, 'auth:response', { signature });
  }

  emit<T = unknown>(event: string, payload: unknown): Promise<Ack<T>> {
    return emitWithAck<T>(this.socket, event, payload);
  }

  checkIn(taskId: string) {
    return this.emit<{ status: string }>('checkin', { taskId, ...ELIGIBLE });
  }

  /** The first plan received for `roundId` (or any), polled every 20 ms. */
  async waitForPlan(roundId?: string, timeoutMs = PATIENCE_MS): Promise<RoundPlan> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const plan = this.plans.find((p) => roundId === undefined || p.roundId === roundId);
      if (plan) return plan;
      if (Date.now() > deadline)
        throw new Error(`${this.deviceId}: no plan${roundId ? ` for ${roundId}` : ''}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** `PUT /blobs/:sha256` of `bytes` on the current coordinator with the session token. */
  upload(bytes: Uint8Array, digest = sha256Hex(bytes)): Promise<Response> {
    return fetch(`${this.url}/blobs/${digest}`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${this.session?.sessionToken ?? ''}`,
        'content-type': 'application/octet-stream',
      },
      body: Buffer.from(bytes),
    });
  }

  /** The metadata of `bytes` as an update in `plan`, claiming `numExamples`, with stand-in telemetry. */
  protected updateMetadata(plan: RoundPlan, bytes: Uint8Array, numExamples: number): UpdateMetadata {
    return standInUpdateMetadata({ plan, deviceId: this.deviceId, bytes, numExamples, reportedNorm: 0.5 });
  }

  /** `update:submit` of `metadata` signed with `secretKey` (another key forges). */
  submit(metadata: UpdateMetadata, secretKey: Uint8Array = this.keys.secretKey) {
    return this.emit<{ norm: number; roundId: string }>('update:submit', {
      metadata,
      signature: signPayload(SIGNING_DOMAINS.update, metadata, secretKey),
    });
  }

  /** Uploads `bytes` and submits `metadata` for them. */
  protected async uploadAndSubmit(bytes: Uint8Array, metadata: UpdateMetadata) {
    const res = await this.upload(bytes);
    if (res.status !== 201 && res.status !== 200)
      throw new Error(`upload failed: ${res.status} ${await res.text()}`);
    return this.submit(metadata);
  }
}

async function emitWithAck<T>(socket: Socket | null, event: string, payload: unknown): Promise<Ack<T>> {
  if (!socket) throw new Error('not connected');
  return (await socket.timeout(PATIENCE_MS).emitWithAck(event, payload)) as Ack<T>;
}
