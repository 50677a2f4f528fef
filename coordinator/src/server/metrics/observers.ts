import type { Logger } from 'pino';
import type { RoundClosed } from '@flotilla/protocol';
import type { RoundEvents } from '../round-events.js';
import type { FleetChannel } from '../round-manager.js';
import type { FlotillaMetrics } from './flotilla-metrics.js';
import { roundLogger } from './round-logger.js';

// The coordinator already funnels every round event through `RoundEvents` and every round state
// change the fleet must hear about through `FleetChannel.broadcast('round:closed')`. Wrapping those
// two seams counts what happened without threading a metrics object through the state machine.

/** `events` that also counts each appended event in `metrics`. */
export function observeRoundEvents(events: RoundEvents, metrics: FlotillaMetrics): RoundEvents {
  return {
    async append(event) {
      const record = await events.append(event);
      metrics.observeRoundEvent(event);
      return record;
    },
    // A round's end is counted from the round:closed broadcast (observeFleetChannel).
    endRound: (end) => events.endRound(end),
    pseudonymize: (deviceId) => events.pseudonymize(deviceId),
    commitUpdate: (roundId, blobDigest) => events.commitUpdate(roundId, blobDigest),
    proveInclusion: (leafIndex) => events.proveInclusion(leafIndex),
  };
}

/**
 * `fleet` that counts round state changes from the `round:closed` broadcasts (sent once per
 * stored transition) and logs each round's aggregation time with its round id.
 */
export function observeFleetChannel(
  fleet: FleetChannel,
  metrics: FlotillaMetrics,
  logger: Logger,
): FleetChannel {
  return {
    toDevice: (deviceId, event, ...args) => fleet.toDevice(deviceId, event, ...args),
    broadcast(event, ...args) {
      fleet.broadcast(event, ...args);
      if (event !== 'round:closed') return;
      const closed = args[0] as RoundClosed;
      const { aggregationSeconds } = metrics.observeRoundClosed(closed);
      if (aggregationSeconds !== null)
        roundLogger(logger, closed).info(
          { decision: closed.state, aggregationSeconds },
          'aggregation outcome applied',
        );
    },
    isOnline: (deviceId) => fleet.isOnline(deviceId),
  };
}

/** Minimal view of a socket.io server: enough to count connections and authenticated devices. */
export interface ObservableSocketServer {
  on(event: 'connection', listener: (socket: ObservableSocket) => void): unknown;
  of(namespace: '/'): { sockets: Map<string, ObservableSocket> };
}
export interface ObservableSocket {
  data: { deviceId?: string; authenticated?: boolean };
  on(event: 'disconnect', listener: () => void): unknown;
}

/** Counts socket connections and disconnections; returns the connected-devices source. */
export function observeSockets(io: ObservableSocketServer, metrics: FlotillaMetrics): () => number {
  io.on('connection', (socket) => {
    metrics.socketConnections.inc();
    socket.on('disconnect', () => metrics.socketDisconnections.inc());
  });
  return () => {
    const devices = new Set<string>();
    for (const socket of io.of('/').sockets.values())
      if (socket.data.authenticated === true && socket.data.deviceId) devices.add(socket.data.deviceId);
    return devices.size;
  };
}
