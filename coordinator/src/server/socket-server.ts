import { randomBytes } from 'node:crypto';
import type { Server, Socket } from 'socket.io';
import type { Logger } from 'pino';
import {
  CLIENT_REQUESTS,
  CLIENT_REQUEST_NAMES,
  FlotillaError,
  HelloSchema,
  SIGNING_DOMAINS,
  isClientRequest,
  isCompatibleProtocol,
  parseRequestPayload,
  toBase64,
  toWireError,
  verifyPayload,
  type AuthResult,
  type ClientRequest,
  type ClientToServerEvents,
  type RequestHandlers,
  type ServerToClientEvents,
  type SigningKeyPair,
} from '@flotilla/protocol';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../shared/keys.js';
import type { TaskRegistry } from '../shared/task-registry.js';
import type { DeviceRegistry } from './device-registry.js';
import type { FleetChannel, RoundOps } from './round-manager.js';
import type { FleetPresence } from './presence.js';
import type { SessionStore } from './sessions.js';
import { logFailures } from '../shared/failure-guards.js';
import { IdentityRateLimiter, TokenBucket, type RateLimitOptions } from './rate-limiter.js';
import type { RoundResponses } from './round-responses.js';
import {
  ConnectionGuard,
  DEFAULT_CONNECTION_LIMITS,
  type CloseSocket,
  type ConnectionGuardStats,
  type ConnectionLimitOptions,
} from './connection-guard.js';

export interface SocketData {
  deviceId: string;
  publicKey: string;
  challenge: string;
  authenticated: boolean;
}

export type FleetServer = Server<
  ClientToServerEvents,
  ServerToClientEvents,
  Record<string, never>,
  SocketData
>;
type FleetSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
type AckFn = (result: unknown) => void;

export interface SocketDeps {
  io: FleetServer;
  devices: DeviceRegistry;
  sessions: SessionStore;
  tasks: TaskRegistry;
  rounds: RoundOps;
  /** What devices' answers do to their round (updates, skips). */
  responses: RoundResponses;
  /** Where the per-identity message budget is kept. */
  redis: Redis;
  keys: RedisKeys;
  coordinatorKey: SigningKeyPair;
  logger: Logger;
  /**
   * Message budget of each device identity, shared by its connections on every coordinator
   * process (in Redis); also each connection's budget before it answers the challenge.
   */
  rateLimit: RateLimitOptions;
  /** Per-device socket bounds and the challenge timeout. Default `DEFAULT_CONNECTION_LIMITS`. */
  connectionLimits?: ConnectionLimitOptions;
  /** Fleet-wide presence (Redis), so any coordinator process can tell who is online. */
  presence: FleetPresence;
}

/** Counters the tests and /metrics read. */
export interface SocketStats {
  /** Messages that arrived without an ack callback and were dropped. */
  droppedWithoutAck: number;
  /** Messages answered with BAD_REQUEST. */
  badRequests: number;
  rateLimited: number;
  /** Sockets closed by the per-device bounds and the challenge timeout. */
  connections: ConnectionGuardStats;
}

function refuse(
  code: FlotillaError['code'],
  message: string,
): Error & { data: { code: string; message: string } } {
  return Object.assign(new Error(message), { data: { code, message } });
}

/**
 * Wires the handshake, the challenge and the device events onto `io`. Returns the fleet channel
 * and `disconnectDevice`, which closes every socket of a device on this process (revocation).
 */
export function attachFleetSockets(deps: SocketDeps): {
  fleet: FleetChannel;
  stats: SocketStats;
  disconnectDevice: (deviceId: string) => number;
} {
  const { io, logger } = deps;
  const { presence } = deps;
  const guard = new ConnectionGuard(deps.connectionLimits ?? DEFAULT_CONNECTION_LIMITS);
  const stats: SocketStats = {
    droppedWithoutAck: 0,
    badRequests: 0,
    rateLimited: 0,
    connections: guard.stats,
  };

  io.use((socket, next) => {
    const hello = HelloSchema.safeParse(socket.handshake.auth);
    if (!hello.success)
      return next(refuse('BAD_REQUEST', 'handshake auth must be { deviceId, protocolVersion }'));
    if (!isCompatibleProtocol(hello.data.protocolVersion))
      return next(refuse('VERSION_MISMATCH', `protocol ${hello.data.protocolVersion} is not supported`));
    deps.devices
      .getDevice(hello.data.deviceId)
      .then((device) => {
        if (!device) return next(refuse('UNKNOWN_DEVICE', 'device is not enrolled'));
        if (device.status !== 'active')
          return next(refuse('REVOKED_DEVICE', 'device enrollment was revoked'));
        socket.data.deviceId = device.deviceId;
        socket.data.publicKey = device.publicKey;
        socket.data.challenge = randomBytes(32).toString('hex');
        socket.data.authenticated = false;
        next();
      })
      .catch(() => next(refuse('INTERNAL', 'internal error')));
  });

  const identityLimit = new IdentityRateLimiter(deps.redis, deps.keys, deps.rateLimit);

  const onConnection = (socket: FleetSocket): void => {
    // Before the challenge is answered the device id is only a claim: its messages draw on this
    // connection's own bucket, so a stranger cannot spend the real device's budget.
    const preAuthBucket = new TokenBucket(deps.rateLimit);
    const admit = (): Promise<boolean> | boolean =>
      socket.data.authenticated ? identityLimit.take(socket.data.deviceId) : preAuthBucket.take();
    const log = logger.child({ deviceId: socket.data.deviceId });
    const closeSocket: CloseSocket = (code, message) => {
      socket.emit('error', { code, message });
      socket.disconnect(true);
    };
    // A socket restored by connection-state recovery is already authenticated.
    if (socket.data.authenticated) guard.authenticate(socket.data.deviceId, socket.id, closeSocket);
    else guard.admit(socket.data.deviceId, socket.id, closeSocket);

    /**
     * Takes a message's ack (its last argument; a message without one is dropped and counted),
     * charges it to the socket's rate limit and, if admitted, hands the ack to `answer`; a refusal
     * and any failure are answered through the ack.
     */
    const answerAdmitted = (event: string, args: unknown[], answer: (reply: AckFn) => void): void => {
      const ack = args[args.length - 1];
      if (typeof ack !== 'function') {
        stats.droppedWithoutAck += 1;
        return;
      }
      const reply = ack as AckFn;
      Promise.resolve()
        .then(admit)
        .then((admitted) => {
          if (admitted) return answer(reply);
          stats.rateLimited += 1;
          reply({ ok: false, error: { code: 'RATE_LIMITED', message: 'too many messages; slow down' } });
        })
        .catch((error: unknown) => {
          log.error({ err: error, event }, 'message not dispatched');
          reply({ ok: false, error: toWireError(error) });
        });
    };

    /** Validates and dispatches one request; every path answers through the ack exactly once. */
    const register = <R extends ClientRequest>(request: R, run: RequestHandlers[R]): void => {
      const listener = (...args: unknown[]): void => {
        answerAdmitted(request, args, (reply) => dispatch(args, reply));
      };

      const dispatch = (args: unknown[], reply: AckFn): void => {
        if (args.length !== 2) {
          stats.badRequests += 1;
          reply({
            ok: false,
            error: { code: 'BAD_REQUEST', message: `${request} takes one payload and an ack` },
          });
          return;
        }
        const parsed = parseRequestPayload(request, args[0]);
        if (!parsed.success) {
          stats.badRequests += 1;
          reply({
            ok: false,
            error: {
              code: 'BAD_REQUEST',
              message: `invalid ${request}: ${parsed.error.issues[0]?.message ?? 'schema'}`,
            },
          });
          return;
        }
        if (CLIENT_REQUESTS[request].authenticated && !socket.data.authenticated) {
          reply({ ok: false, error: { code: 'UNAUTHORIZED', message: 'answer auth:challenge first' } });
          return;
        }
        run(parsed.data)
          .then((data) => reply({ ok: true, data }))
          .catch((error: unknown) => {
            if (!(error instanceof FlotillaError))
              log.error({ err: error, event: request }, 'handler failed');
            reply({ ok: false, error: toWireError(error) });
          });
      };
      // Widened to every request: the listener validates its arguments itself, whatever they are.
      const event: ClientRequest = request;
      socket.on(event, logFailures(log, `${request} handler`, listener));
    };

    socket.onAny((event: string, ...args: unknown[]) => {
      if (isClientRequest(event)) return;
      // Unknown events draw on the same budget: answering them is work too.
      answerAdmitted(event, args, (reply) => {
        stats.badRequests += 1;
        reply({ ok: false, error: { code: 'BAD_REQUEST', message: 'unknown event' } });
      });
    });

    /** `auth:response`: the device signed the challenge; opens its session. */
    const answerChallenge = async (signature: string): Promise<AuthResult> => {
      if (socket.data.authenticated) throw new FlotillaError('BAD_REQUEST', 'already authenticated');
      const payload = {
        deviceId: socket.data.deviceId,
        nonce: socket.data.challenge,
        coordinatorKey: toBase64(deps.coordinatorKey.publicKey),
      };
      if (!verifyPayload(SIGNING_DOMAINS.authChallenge, payload, signature, socket.data.publicKey)) {
        log.warn('bad challenge signature; closing');
        const close = () => {
          socket.emit('error', { code: 'BAD_SIGNATURE', message: 'challenge signature does not verify' });
          socket.disconnect(true);
        };
        setTimeout(logFailures(log, 'closing a socket after a bad signature', close), 20);
        throw new FlotillaError('BAD_SIGNATURE', 'challenge signature does not verify');
      }
      // The session is opened first: it is refused (REVOKED_DEVICE) in the same step as a
      // revocation that came after the handshake, and the socket is then closed.
      const session = await deps.sessions.create(socket.data.deviceId).catch((error: unknown) => {
        if (FlotillaError.is(error, 'REVOKED_DEVICE'))
          setTimeout(
            logFailures(log, 'closing a revoked socket', () =>
              closeSocket('REVOKED_DEVICE', 'device enrollment was revoked'),
            ),
            20,
          );
        throw error;
      });
      socket.data.authenticated = true;
      guard.authenticate(socket.data.deviceId, socket.id, closeSocket);
      await socket.join([`device:${socket.data.deviceId}`, 'fleet']);
      await presence.add(socket.data.deviceId);
      return { deviceId: socket.data.deviceId, ...session };
    };

    /** A device revoked while connected is answered REVOKED_DEVICE until its socket is closed. */
    const requireActive = async (): Promise<void> => {
      const device = await deps.devices.getDevice(socket.data.deviceId);
      if (device?.status !== 'active')
        throw new FlotillaError('REVOKED_DEVICE', 'device enrollment was revoked');
    };

    // One handler per request of protocol's table (events.ts): one missing does not compile.
    const handlers: RequestHandlers = {
      'auth:response': ({ signature }) => answerChallenge(signature),
      checkin: async (checkIn) => {
        await requireActive();
        const signed = await deps.tasks.getTask(checkIn.taskId);
        if (!signed) throw new FlotillaError('NOT_FOUND', `task ${checkIn.taskId} not found`);
        return deps.rounds.checkIn(socket.data.deviceId, checkIn, signed.task);
      },
      'update:submit': (submission) => deps.responses.submitUpdate(socket.data.deviceId, submission),
      'update:skip': async (skip) => {
        await requireActive();
        return deps.responses.recordSkip(socket.data.deviceId, skip);
      },
      'log:proof': ({ leafIndex }) => deps.responses.proveInclusion(leafIndex),
    };
    for (const request of CLIENT_REQUEST_NAMES) register(request, handlers[request]);

    socket.emit('auth:challenge', {
      nonce: socket.data.challenge,
      coordinatorKey: toBase64(deps.coordinatorKey.publicKey),
      serverTime: Date.now(),
    });

    const onDisconnect = () => {
      guard.release(socket.data.deviceId, socket.id);
      if (!socket.data.authenticated) return;
      presence
        .remove(socket.data.deviceId)
        .catch((error: unknown) => log.warn({ err: error }, 'presence not withdrawn'));
    };
    socket.on('disconnect', logFailures(log, 'socket disconnect handler', onDisconnect));
  };
  // socket.io calls 'connection' and event listeners from process.nextTick, outside any try of
  // its own: each is wrapped so that a throw is logged instead of ending the process.
  io.on('connection', logFailures(logger, 'socket connection handler', onConnection));

  const fleet: FleetChannel = {
    toDevice(deviceId, event, ...args) {
      io.to(`device:${deviceId}`).emit(event, ...args);
    },
    broadcast(event, ...args) {
      io.to('fleet').emit(event, ...args);
    },
    isOnline: (deviceId) => presence.isOnline(deviceId),
  };
  const disconnectDevice = (deviceId: string): number =>
    guard.closeDevice(deviceId, 'REVOKED_DEVICE', 'device enrollment was revoked');
  return { fleet, stats, disconnectDevice };
}
