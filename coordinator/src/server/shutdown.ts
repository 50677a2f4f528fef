import type { Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Server as SocketServer } from 'socket.io';

/**
 * Default of `closeGraceMs`: how long `close()` lets requests in progress finish before it
 * destroys the connections still open, in ms.
 */
export const DEFAULT_CLOSE_GRACE_MS = 2000;

/** How long `close()` waits for the round log to flush before giving up on it, in ms. */
export const ROUND_LOG_FLUSH_TIMEOUT_MS = 10_000;

/**
 * Every TCP connection the HTTP server accepted and that is still open (WebSocket ones
 * included: an upgrade leaves the server's own bookkeeping but not this set).
 */
export function trackConnections(server: HttpServer): ReadonlySet<Socket> {
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  return open;
}

/**
 * Closes socket.io and the HTTP server under it. `server.close()` waits for every connection to
 * end by itself: a client that connected and never sent a byte, or an upload stalled short of
 * its idle timeout, would hold it for as long as it likes. Connections still open after
 * `graceMs` are destroyed.
 */
export async function closeWithGrace(options: {
  io: SocketServer;
  connections: ReadonlySet<Socket>;
  graceMs: number;
  logger: Logger;
}): Promise<void> {
  const closed = new Promise<void>((resolve) => void options.io.close(() => resolve()));
  const force = setTimeout(() => {
    options.logger.info({ connections: options.connections.size }, 'closing connections still open');
    for (const socket of options.connections) socket.destroy();
  }, options.graceMs);
  try {
    await closed;
  } finally {
    clearTimeout(force);
  }
}

/** Awaits `flush` for at most `timeoutMs` (a Redis that went away must not hold `close()` forever). */
export async function flushWithin(flush: Promise<void>, timeoutMs: number, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const flushed = flush.then(
    () => 'flushed' as const,
    (error: unknown) => {
      logger.warn({ err: error }, 'round log flush failed at close');
      return 'flushed' as const;
    },
  );
  const result = await Promise.race([flushed, timedOut]);
  clearTimeout(timer);
  if (result === 'timeout')
    logger.warn({ timeoutMs }, 'round log not flushed at close; the next process catches the mirror up');
}
