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
  /** Lets session saves in flight land (at most a second), then drops the connection. */
  close(): Promise<void>;
}

/** Longest a close waits for session saves in flight. */
const CLOSE_GRACE_MS = 1_000;

/**
 * The adapter saves a disconnected socket's session with a SET it never awaits or catches, so one
 * that meets a closed connection (a device dropping while its coordinator shuts down) would be an
 * unhandled rejection. Every SET gets a handler here, and close() can wait for those in flight.
 */
function trackSets(client: Redis): Set<Promise<unknown>> {
  const pending = new Set<Promise<unknown>>();
  const original = client.set.bind(client) as (...args: unknown[]) => Promise<unknown>;
  Object.assign(client, {
    set: (...args: unknown[]) => {
      const reply = original(...args);
      pending.add(reply);
      const settle = () => pending.delete(reply);
      reply.then(settle, settle);
      return reply;
    },
  });
  return pending;
}

/** The id of the stream's last entry, `0-0` when it is empty, or null when Redis cannot say. */
async function lastEntryId(client: Redis, stream: string): Promise<string | null> {
  try {
    const [last] = await client.xrevrange(stream, '+', '-', 'COUNT', 1);
    return last?.[0] ?? '0-0';
  } catch {
    return null;
  }
}

/**
 * The adapter polls its stream with `XREAD BLOCK 100 … $` until it has read a first entry, and `$`
 * means "after the last entry when this read arrives": an entry added between two of those reads
 * is never read. Until the first heartbeat (5 s) that lost emits from other processes, e.g. a round
 * plan for a device connected here. A `$` read is given the last entry id seen instead (at first
 * the stream's last id), so no entry falls between two reads; `$` stays when Redis cannot say.
 */
export function readFromLastSeen(client: Redis, stream: string): void {
  const original = client.xread.bind(client) as (...args: unknown[]) => Promise<unknown>;
  let lastSeen: string | null = null;
  Object.assign(client, {
    xread: async (...args: unknown[]) => {
      const at = args.lastIndexOf('$');
      if (at >= 0) {
        lastSeen ??= await lastEntryId(client, stream);
        if (lastSeen !== null) args[at] = lastSeen;
      }
      const reply = (await original(...args)) as [string, [string, string[]][]][] | null;
      const entries = reply?.[0]?.[1] ?? [];
      const newest = entries[entries.length - 1];
      if (newest) lastSeen = newest[0];
      return reply;
    },
  });
}

/**
 * The adapter polls its stream with `XREAD BLOCK 100` and appends to it with `XADD` on the same
 * connection, and it emits to local sockets only once its `XADD` is answered: every broadcast
 * (`round:closed`, `adapter:promoted` to the fleet) waited behind the poll in flight, up to 100 ms,
 * 50 ms on average. Appends go out on a connection of their own.
 */
export function publishApart(client: Redis, publisher: Redis): void {
  Object.assign(client, { xadd: publisher.xadd.bind(publisher) });
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
  const publisher = new Redis(options.redisOptions);
  // They reconnect by themselves, and the coordinator's main connection already logs Redis outages;
  // without a listener ioredis prints every failed attempt as an unhandled error event.
  for (const connection of [client, publisher]) connection.on('error', () => undefined);
  const pendingSets = trackSets(client);
  readFromLastSeen(client, options.keys.socketStream());
  publishApart(client, publisher);
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
    async close() {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)));
      await Promise.race([Promise.allSettled([...pendingSets]), grace]);
      clearTimeout(timer);
      client.disconnect();
      publisher.disconnect();
    },
  };
}
