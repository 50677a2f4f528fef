import type { Ack, AuthChallenge, AuthResult, RoundPlan } from '@flotilla/protocol';
import { ProtocolDevice } from './device-protocol.js';

/**
 * A raw-protocol test device (as in test-device.ts) that knows several coordinator URLs: it starts on
 * `urls[0]` and, when its socket drops without being asked to, connects to the next URL that
 * answers (round robin, bounded attempts), re-authenticating with the new process's challenge.
 * Uploads go to whichever coordinator it is connected to.
 */
export class FailoverDevice extends ProtocolDevice {
  /** Index into `urls` of the current coordinator. */
  current = 0;
  /** URLs this device connected to, in order. */
  readonly history: string[] = [];
  private closing = false;
  private failingOver: Promise<void> | null = null;

  constructor(
    readonly urls: string[],
    deviceId: string,
  ) {
    super(deviceId);
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
    const socket = this.openSocket(url, { transports: ['websocket'], reconnection: false, timeout: 2000 });
    const ack = await new Promise<Ack<AuthResult> | null>((resolve) => {
      socket.once('auth:challenge', (challenge: AuthChallenge) => {
        this.answerChallenge(socket, challenge, this.keys.secretKey).then(resolve, () => resolve(null));
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

  /** Uploads to the current coordinator and submits; resolves with the ack. */
  report(plan: RoundPlan, bytes: Uint8Array, numExamples: number) {
    return this.uploadAndSubmit(bytes, this.updateMetadata(plan, bytes, numExamples));
  }

  disconnect(): void {
    this.closing = true;
    this.socket?.disconnect();
  }
}
