import { createAdapter } from '@socket.io/redis-streams-adapter';
import { Redis, type RedisOptions } from 'ioredis';
import type { ServerOptions } from 'socket.io';
import type { RedisKeys } from '../shared/keys.js';

/**
 * Default connection-state recovery window: 0 (off). With recovery on, socket.io routes every emit,
 * even to a single socket, through the adapter so that it gets a stream offset: one XADD per
 * packet, delivered only after Redis answers. Devices re-authenticate and check in again after a
 * reconnect anyway (and get their plan re-sent), so recovery is opt-in.
 */
export const DEFAULT_RECOVERY_WINDOW_MS = 0;

export interface ClusterAdapter {
  /** socket.io server options: the adapter and connection-state recovery. */
  serverOptions: Partial<ServerOptions>;
  close(): void;
}

/**
 * socket.io's Redis streams adapter: emits to a room (`device:<id>`, `fleet`) reach the sockets of
 * every coordinator process on the same Redis and prefix, and sessions survive a reconnect
 * (connection-state recovery: rooms and missed packets), on any process.
 *
 * The adapter reads its stream with `XREAD BLOCK` on its own connection, so it gets a dedicated
 * client. Recovered sockets still pass the middleware (`skipMiddlewares: false`) and answer a new
 * challenge: a recovered session proves possession of a session id, not of the device key.
 */
export function redisStreamsAdapter(options: {
  redisOptions: RedisOptions;
  keys: RedisKeys;
  /** Longest disconnection to recover from, in ms; 0 (default) turns recovery off. */
  recoveryWindowMs?: number;
}): ClusterAdapter {
  const client = new Redis(options.redisOptions);
  const recoveryWindowMs = options.recoveryWindowMs ?? DEFAULT_RECOVERY_WINDOW_MS;
  const adapter = createAdapter(client, {
    streamName: options.keys.socketStream(),
    sessionKeyPrefix: options.keys.socketSessionPrefix(),
    maxLen: 10_000,
  }) as ServerOptions['adapter'];
  return {
    serverOptions: {
      adapter,
      ...(recoveryWindowMs > 0
        ? {
            connectionStateRecovery: {
              maxDisconnectionDuration: recoveryWindowMs,
              skipMiddlewares: false,
            },
          }
        : {}),
    },
    close: () => client.disconnect(),
  };
}
