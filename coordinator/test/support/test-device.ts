import type {
  SigningKeyPair,
  Ack,
  AuthChallenge,
  AuthResult,
  RoundPlan,
  UpdateMetadata,
} from '@flotilla/protocol';
import { ProtocolDevice } from './device-protocol.js';

/** A device written from docs/protocol.md: tweetnacl keys, socket.io-client, fetch. */
export class TestDevice extends ProtocolDevice {
  readonly errors: unknown[] = [];

  constructor(
    readonly url: string,
    deviceId: string,
    /** The device's identity; pass another device's keys to open a second connection as it. */
    keys?: SigningKeyPair,
  ) {
    super(deviceId, keys);
  }

  /**
   * Connects and answers the challenge (with `signWith` = another key to forge). `transports`:
   * default `['websocket']`; `null` leaves socket.io-client's own default (polling, then upgrade).
   */
  connect(
    options: {
      signWith?: Uint8Array;
      reconnection?: boolean;
      transports?: Array<'polling' | 'websocket'> | null;
    } = {},
  ): Promise<Ack<AuthResult>> {
    const transports = options.transports === undefined ? ['websocket'] : options.transports;
    const socket = this.openSocket(this.url, {
      ...(transports === null ? {} : { transports }),
      reconnection: options.reconnection ?? false,
      reconnectionDelay: 200,
      reconnectionDelayMax: 500,
    });
    this.socket = socket;
    socket.on('error', (e: unknown) => this.errors.push(e));
    return new Promise<Ack<AuthResult>>((resolve, reject) => {
      socket.on('auth:challenge', (challenge: AuthChallenge) => {
        this.answerChallenge(socket, challenge, options.signWith ?? this.keys.secretKey).then((ack) => {
          if (ack.ok) this.session = ack.data;
          resolve(ack);
        }, reject);
      });
      socket.once('connect_error', (error: Error & { data?: unknown }) => {
        resolve({
          ok: false,
          error: (error.data as { code: string; message: string } | undefined) ?? {
            code: 'CONNECT',
            message: error.message,
          },
        });
      });
    });
  }

  /** Metadata for `bytes` in `plan`; the device claims 10 + (the digits of its id) examples. */
  metadata(plan: RoundPlan, bytes: Uint8Array, overrides: Partial<UpdateMetadata> = {}): UpdateMetadata {
    const numExamples = 10 + Number(this.deviceId.replace(/\D/g, '') || 0);
    return { ...this.updateMetadata(plan, bytes, numExamples), ...overrides };
  }

  /** Uploads `bytes` and submits them for `plan`. */
  report(plan: RoundPlan, bytes: Uint8Array, overrides: Partial<UpdateMetadata> = {}) {
    return this.uploadAndSubmit(bytes, this.metadata(plan, bytes, overrides));
  }

  disconnect(): void {
    this.socket?.disconnect();
  }
}
