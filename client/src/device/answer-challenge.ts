import {
  FlotillaError,
  SIGNING_DOMAINS,
  signPayload,
  type AuthChallenge,
  type AuthResult,
  type SigningKeyPair,
} from '@flotilla/protocol';
import type { CoordinatorKeyPin } from './coordinator-key-pin.js';
import { callWithAck, type AckEmitter } from './socket-call.js';

export interface ChallengeContext {
  deviceId: string;
  keys: SigningKeyPair;
  pin: CoordinatorKeyPin;
  socket: AckEmitter;
  ackTimeoutMs: number;
}

export type ChallengeOutcome =
  | { kind: 'session'; session: AuthResult }
  /** Retrying cannot help: the coordinator's key is not the pinned one, or our signature is refused. */
  | { kind: 'fatal'; error: Error }
  /** The answer was lost or refused for a passing reason; the next connection tries again. */
  | { kind: 'failed'; error: unknown };

/**
 * Answers the coordinator's `auth:challenge`: checks (or pins) its key, signs the nonce bound to
 * the device id and that key, and sends `auth:response`, whose ack opens the session.
 */
export async function answerChallenge(
  challenge: AuthChallenge,
  context: ChallengeContext,
): Promise<ChallengeOutcome> {
  const offered = challenge.coordinatorKey;
  if (!(await context.pin.accept(offered)))
    return {
      kind: 'fatal',
      error: new FlotillaError(
        'BAD_SIGNATURE',
        'the coordinator key differs from the pinned key: refusing to continue',
      ),
    };
  const signature = signPayload(
    SIGNING_DOMAINS.authChallenge,
    { deviceId: context.deviceId, nonce: challenge.nonce, coordinatorKey: offered },
    context.keys.secretKey,
  );
  try {
    const session = await callWithAck(context.socket, 'auth:response', { signature }, context.ackTimeoutMs);
    return { kind: 'session', session };
  } catch (error) {
    // A refused signature means the enrolled key is not ours: retrying cannot help.
    if (FlotillaError.is(error, 'BAD_SIGNATURE')) return { kind: 'fatal', error };
    return { kind: 'failed', error };
  }
}
