import {
  ERROR_CODES,
  FlotillaError,
  parseRequestRefusal,
  parseRequestResult,
  type ClientRequest,
  type ErrorCode,
  type RequestPayload,
  type RequestRefusal,
  type RequestResult,
} from '@flotilla/protocol';
import { z } from 'zod';

// The envelope only; `data` and `error` are then checked against the request's own schemas.
const AckEnvelopeSchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), data: z.unknown() }),
  z.object({ ok: z.literal(false), error: z.unknown() }),
]);

/** The part of a socket.io client socket the runtime calls; typed loosely and validated with zod. */
export interface AckEmitter {
  readonly connected: boolean;
  timeout(ms: number): {
    emit(event: string, payload: unknown, ack: (error: Error | null, result: unknown) => void): void;
  };
  once(event: 'disconnect', listener: () => void): unknown;
  off(event: 'disconnect', listener: () => void): unknown;
}

/** The ack was an error answer from the coordinator (as opposed to a timeout or a lost connection). */
export class AckError extends FlotillaError {
  constructor(
    code: ErrorCode,
    message: string,
    /** The ack's `error` as the request's table row describes it (e.g. a refused update's `logLeaf`). */
    readonly refusal: RequestRefusal<ClientRequest>,
  ) {
    super(code, message);
  }
}

/** The request may or may not have reached the coordinator: the connection dropped or the ack timed out. */
export class AckLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AckLostError';
  }
}

/**
 * Sends request `event` of protocol's table (events.ts) and resolves with the `data` of an
 * `{ ok: true }` ack, validated against the table's schema for that request. Rejects with AckError
 * for `{ ok: false }`, and AckLostError when not connected, on disconnect or after `timeoutMs`.
 * Never emits while disconnected, so nothing is buffered to replay before re-auth.
 */
export function callWithAck<R extends ClientRequest>(
  socket: AckEmitter,
  event: R,
  payload: RequestPayload<R>,
  timeoutMs: number,
): Promise<RequestResult<R>> {
  return new Promise((resolve, reject) => {
    if (!socket.connected) {
      reject(new AckLostError(`not connected: ${event} not sent`));
      return;
    }
    let settled = false;
    const onDisconnect = () =>
      finish(() => reject(new AckLostError(`disconnected while waiting for the ${event} ack`)));
    const finish = (action: () => void) => {
      if (settled) return;
      settled = true;
      socket.off('disconnect', onDisconnect);
      action();
    };
    socket.once('disconnect', onDisconnect);
    socket.timeout(timeoutMs).emit(event, payload, (error, result) => {
      finish(() => {
        if (error) return reject(new AckLostError(`no ${event} ack within ${timeoutMs} ms`));
        const parsed = AckEnvelopeSchema.safeParse(result);
        if (!parsed.success) return reject(new FlotillaError('BAD_REQUEST', `malformed ${event} ack`));
        if (parsed.data.ok) {
          const data = parseRequestResult(event, parsed.data.data);
          if (!data.success) return reject(new FlotillaError('BAD_REQUEST', `malformed ${event} ack data`));
          return resolve(data.data);
        }
        const refusal = parseRequestRefusal(event, parsed.data.error);
        if (!refusal.success) return reject(new FlotillaError('BAD_REQUEST', `malformed ${event} ack error`));
        const wire = refusal.data;
        reject(new AckError(isKnownCode(wire.code) ? wire.code : 'INTERNAL', wire.message, wire));
      });
    });
  });
}

function isKnownCode(code: string): code is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(code);
}
