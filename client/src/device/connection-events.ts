import type { Socket } from 'socket.io-client';
import { FlotillaError, WireErrorSchema } from '@flotilla/protocol';
import type { DeviceLogger } from './logger.js';

/** Connection refusals that retrying cannot fix. */
const FATAL_CONNECT_CODES = new Set(['UNKNOWN_DEVICE', 'REVOKED_DEVICE', 'VERSION_MISMATCH', 'UNAUTHORIZED']);

/**
 * Logs which transport carries the session, and when it is upgraded: the first thing to check
 * when a proxy on the way refuses WebSocket or long-polling.
 */
export function logTransports(socket: Socket, logger: DeviceLogger): void {
  socket.io.on('open', () => {
    const { engine } = socket.io;
    logger.info({ transport: engine.transport.name }, 'connected');
    engine.on('upgrade', (transport: { name: string }) =>
      logger.info({ transport: transport.name }, 'transport upgraded'),
    );
  });
}

/** The error to stop with when the coordinator refused the connection for good; null when retrying may help. */
export function fatalRefusal(error: Error & { data?: unknown }): FlotillaError | null {
  const wire = WireErrorSchema.safeParse(error.data);
  if (!wire.success || !FATAL_CONNECT_CODES.has(wire.data.code)) return null;
  return new FlotillaError('UNAUTHORIZED', `connection refused: ${wire.data.code}: ${wire.data.message}`);
}
