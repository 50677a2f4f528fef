import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisKeys } from '../shared/keys.js';
import { logFailures } from '../shared/failure-guards.js';
import { DriverNudgeSchema, type RoundLease } from './round-lease.js';
import type { RoundManager } from './round-manager.js';

// The pub/sub channels every coordinator process listens on: a task changed (act on it), a round
// driver nudge (only the lease holder acts), a device revoked (each process closes its own sockets).

export interface CoordinatorChannelDeps {
  /** A connection for subscribing only. */
  sub: Redis;
  keys: RedisKeys;
  logger: Logger;
  lease: Pick<RoundLease, 'holds'>;
  manager: Pick<RoundManager, 'onTaskChanged' | 'onNudge'>;
  /** Closes this process's sockets of a device; returns how many it closed. */
  disconnectDevice(deviceId: string): number;
}

export async function subscribeCoordinatorChannels(deps: CoordinatorChannelDeps): Promise<void> {
  const { sub, keys, logger, lease, manager } = deps;
  const tasksChannel = keys.tasksChannel();
  const nudgesChannel = keys.driverNudges();
  const revokedChannel = keys.devicesRevoked();
  // ioredis calls 'message' listeners from its socket's data handler: a throw would be uncaught.
  const onMessage = (channel: string, message: string): void => {
    if (channel === revokedChannel) {
      // Every process closes its own sockets of a revoked device (the revoking one included).
      const closed = deps.disconnectDevice(message);
      if (closed > 0) logger.warn({ deviceId: message, sockets: closed }, 'revoked device disconnected');
      return;
    }
    if (channel === tasksChannel)
      manager
        .onTaskChanged(message)
        .catch((error: unknown) =>
          logger.error({ err: error, taskId: message }, 'acting on a task change failed'),
        );
    if (channel !== nudgesChannel || !lease.holds()) return;
    let nudge;
    try {
      nudge = DriverNudgeSchema.safeParse(JSON.parse(message));
    } catch {
      return;
    }
    if (!nudge.success) return;
    manager
      .onNudge(nudge.data)
      .catch((error: unknown) => logger.error({ err: error, nudge: nudge.data }, 'nudge failed'));
  };
  sub.on('message', logFailures(logger, 'pub/sub message handler', onMessage));
  await sub.subscribe(tasksChannel, nudgesChannel, revokedChannel);
}
