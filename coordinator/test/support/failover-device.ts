import nacl from 'tweetnacl';
import { io, type Socket } from 'socket.io-client';
import {
  PROTOCOL_VERSION,
  SIGNING_DOMAINS,
  sha256Hex,
  signPayload,
  toBase64,
  type Ack,
  type AuthChallenge,
  type AuthResult,
  type RoundClosed,
  type RoundPlan,
  type SigningKeyPair,
  type UpdateMetadata,
} from '@flotilla/protocol';
import { ELIGIBLE } from './fleet.js';
import { PATIENCE_MS } from '../../../test-support/patience.js';

/**
 * A raw-protocol test device (as in fleet.ts) that knows several coordinator URLs: it starts on
 * `urls[0]` and, when its socket drops without being asked to, connects to the next URL that
 * answers (round robin, bounded attempts), re-authenticating with the new process's challenge.
 * Uploads go to whichever coordinator it is connected to.
 */
export class FailoverDevice {
  readonly keys: SigningKeyPair = nacl.sign.keyPair();
  socket: Socket | null = null;
  session: AuthResult | null = null;
  /** Index into `urls` of the current coordinator. */
  current = 0;
  readonly plans: RoundPlan[] = [];
  readonly closed: RoundClosed[] = [];
  /** URLs this device connected to, in order. */
  readonly history: string[] = [];
  private closing = false;
  private failingOver: Promise<void> | null = null;

  constructor(
    readonly urls: string[],
    readonly deviceId: string,
  ) {}

  get publicKey(): string {
    return toBase64(this.keys.publicKey);
  }

  get url(): string {
    return this.urls[this.current] ?? '';
  }

  get connected(): boolean {
    return this.socket?.connected === true && this.session !== null;
  }

  /** Connects to `urls[index]` and answers its challenge; resolves false when it does not answer. */
  private async connectTo(index: number): Promise<boolean> {
    const url = this.urls[index];
    if (url === undefined) return false;
    const socket = io(url, {
      auth: { deviceId: this.deviceId, protocolVersion: PROTOCOL_VERSION },
      transports: ['websocket'],
      reconnection: false,
      timeout: 2000,
    });
    socket.on('round:plan', (plan: RoundPlan) => this.plans.push(plan));
    socket.on('round:closed', (c: RoundClosed) => this.closed.push(c));
    const ack = await new Promise<Ack<AuthResult> | null>((resolve) => {
      socket.once('auth:challenge', (challenge: AuthChallenge) => {
        (
          socket.timeout(PATIENCE_MS).emitWithAck('auth:response', {
            signature: signPayload(
              SIGNING_DOMAINS.authChallenge,
              { deviceId: this.deviceId, nonce: challenge.nonce, coordinatorKey: challenge.coordinatorKey },
              this.keys.secretKey,
            ),
          }) as Promise<Ack<AuthResult>>
        ).then(resolve, () => resolve(null));
      });
      socket.once('connect_error', () => resolve(null));
    });
    if (!ack?.ok) {
      socket.disconnect();
      return false;
    }
    this.socket = socket;
    this.session = ack.data;
    this.current = index;
    this.history.push(url);
    socket.once('disconnect', (reason) => {
      if (this.closing || reason === 'io client disconnect') return;
      this.session = null;
      this.failingOver = this.failOver();
    });
    return true;
  }

  /** Connects to the first URL (or `start`) that answers. */
  async connect(start = 0): Promise<void> {
    for (let i = 0; i < this.urls.length; i++)
      if (await this.connectTo((start + i) % this.urls.length)) return;
    throw new Error(`${this.deviceId}: no coordinator answered`);
  }

  /** Tries the other coordinators, then again, for at most 40 attempts spaced 250 ms. */
  private async failOver(): Promise<void> {
    for (let attempt = 1; attempt <= 40 && !this.closing; attempt++) {
      if (await this.connectTo((this.current + attempt) % this.urls.length)) return;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Resolves once a failover in progress is over. */
  async settled(): Promise<void> {
    await this.failingOver;
  }

  async emit<T = unknown>(event: string, payload: unknown): Promise<Ack<T>> {
    if (!this.socket) throw new Error('not connected');
    return (await this.socket.timeout(PATIENCE_MS).emitWithAck(event, payload)) as Ack<T>;
  }

  checkIn(taskId: string) {
    return this.emit<{ status: string }>('checkin', { taskId, ...ELIGIBLE });
  }

  async waitForPlan(roundId: string, timeoutMs = PATIENCE_MS): Promise<RoundPlan> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const plan = this.plans.find((p) => p.roundId === roundId);
      if (plan) return plan;
      if (Date.now() > deadline) throw new Error(`${this.deviceId}: no plan for ${roundId}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Uploads to the current coordinator and submits; resolves with the ack. */
  async report(plan: RoundPlan, bytes: Uint8Array, numExamples: number) {
    const digest = sha256Hex(bytes);
    const res = await fetch(`${this.url}/blobs/${digest}`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${this.session?.sessionToken ?? ''}`,
        'content-type': 'application/octet-stream',
      },
      body: Buffer.from(bytes),
    });
    if (res.status !== 201 && res.status !== 200)
      throw new Error(`upload failed: ${res.status} ${await res.text()}`);
    const metadata: UpdateMetadata = {
      protocolVersion: PROTOCOL_VERSION,
      taskId: plan.taskId,
      roundId: plan.roundId,
      nonce: plan.nonce,
      deviceId: this.deviceId,
      blobDigest: digest,
      blobBytes: bytes.length,
      adapterVersion: plan.adapter.version,
      numExamples,
      reportedNorm: 0.5,
      clipped: false,
      quantization: 'none',
      telemetry: {
        trainingMs: 10,
        steps: 1,
        examples: numExamples,
        stepsPerSecond: 100,
        bytesUp: bytes.length,
        bytesDown: 0,
        estimatedEnergyJ: 0.1,
        backend: 'cpu',
      },
      createdAt: Date.now(),
    };
    return this.emit<{ norm: number; roundId: string }>('update:submit', {
      metadata,
      signature: signPayload(SIGNING_DOMAINS.update, metadata, this.keys.secretKey),
    });
  }

  disconnect(): void {
    this.closing = true;
    this.socket?.disconnect();
  }
}
