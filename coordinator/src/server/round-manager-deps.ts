import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ServerToClientEvents } from '@flotilla/protocol';
import type { AdapterRegistry } from '../shared/adapter-registry.js';
import type { RedisKeys } from '../shared/keys.js';
import type { AggregateJobData } from '../shared/queues.js';
import type { TaskRegistry } from '../shared/task-registry.js';
import type { RoundEvents } from './round-events.js';
import type { RoundStore } from './round-store.js';

// What the round manager works with: the fleet channel, the leadership lease and its dependencies.

/** How the server reaches devices; implemented by the socket layer. */
export interface FleetChannel {
  toDevice<E extends keyof ServerToClientEvents>(
    deviceId: string,
    event: E,
    ...args: Parameters<ServerToClientEvents[E]>
  ): void;
  broadcast<E extends keyof ServerToClientEvents>(
    event: E,
    ...args: Parameters<ServerToClientEvents[E]>
  ): void;
  /** Fleet-wide: true when the device holds an authenticated socket on any coordinator process. */
  isOnline(deviceId: string): Promise<boolean>;
}

/**
 * Leadership among coordinator processes (see round-lease.ts): only the lease holder drives the
 * state machines; the others forward what their sockets saw with a nudge.
 */
export interface RoundDriverLease {
  holds(): boolean;
  nudge(nudge: { kind: 'select' | 'response'; roundId: string }): Promise<void>;
}

export interface RoundManagerDeps {
  redis: Redis;
  keys: RedisKeys;
  rounds: RoundStore;
  tasks: TaskRegistry;
  adapters: AdapterRegistry;
  queue: Queue<AggregateJobData>;
  events: RoundEvents;
  logger: Logger;
  fleet: FleetChannel;
  /** What to do with a round found in flight at start (or at a takeover): resume it or abandon it. */
  onRestart: 'resume' | 'abandon';
  /** Absent: this process always drives (a lone coordinator). */
  lease?: RoundDriverLease;
  /**
   * Writes a round's repeated refusals not yet in the round log before the round is closed or
   * abandoned, and returns its refusal total and accepted count. Absent: read from the round hash.
   */
  refusals?: {
    flush(round: { taskId: string; roundId: string }): Promise<{ refused: number; accepted: number }>;
  };
  /** Writes the round's excluded updates (revoked devices) before it is closed or abandoned. */
  exclusions?: { log(round: { taskId: string; roundId: string }): Promise<void> };
}
