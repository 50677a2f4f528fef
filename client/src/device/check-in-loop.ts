import type { DeviceBudget, Eligibility } from '@flotilla/protocol';
import type { DeviceEventReporter } from './device-events.js';
import type { DeviceLogger } from './logger.js';
import { AckLostError, callWithAck, type AckEmitter } from './socket-call.js';

export interface CheckInLoopOptions {
  taskId: string;
  budget: DeviceBudget;
  /** Milliseconds to wait for a plan after a `waiting` check-in before checking in again. */
  planWaitMs: number;
  /** Milliseconds before checking in again after a failure (jittered where a fleet fails at once). */
  retryDelayMs: number;
  ackTimeoutMs: number;
  /** The socket while a session is open and the device runs; null otherwise (no check-in then). */
  connection(): AckEmitter | null;
  /** What the device offers now (asked before every check-in). */
  eligibility(): Promise<Eligibility>;
  adapterVersion(): number;
  /** Schedules on the device's timers (cancelled when it stops). */
  schedule(action: () => void, delayMs: number): void;
  /** The coordinator answered that the task runs no more rounds. */
  onTaskStopped(): void;
  events: DeviceEventReporter;
  logger: DeviceLogger;
}

/**
 * When the device checks in. `idle`: it may check in; `waiting`: checked in, waiting for a plan
 * (or a not-selected); `busy`: working on a round, which checks in again once it is finished.
 * Every way out of `waiting` (a not-selected, an abandoned round, a lost connection, a plan that
 * never came) leads back to `idle` and, unless a reconnection does it, to a scheduled check-in.
 */
export class CheckInLoop {
  private phase: 'idle' | 'waiting' | 'busy' = 'idle';
  /** Counts check-ins, so that a stale plan-wait timer does not act on a later check-in. */
  private seq = 0;

  constructor(private readonly options: CheckInLoopOptions) {}

  get busy(): boolean {
    return this.phase === 'busy';
  }

  /** A round's plan arrived: no check-in until `roundFinished`. */
  roundStarted(): void {
    this.phase = 'busy';
  }

  roundFinished(): void {
    this.phase = 'idle';
  }

  /** The coordinator did not select the device: check in again after its `retryAfterMs`. */
  notSelected(retryAfterMs: number): void {
    if (this.phase !== 'waiting') return;
    this.phase = 'idle';
    this.schedule(retryAfterMs);
  }

  /**
   * A round of the task was abandoned. Waiting devices wait in a round still selecting: abandoned
   * there, it will never send them a plan or a not-selected. Check in with the next round instead
   * of after planWaitMs.
   */
  roundAbandoned(): void {
    if (this.phase !== 'waiting') return;
    this.phase = 'idle';
    this.schedule(jittered(this.options.retryDelayMs));
  }

  /** The connection dropped: the check-in that re-authentication triggers replaces the wait. */
  disconnected(): void {
    if (this.phase === 'waiting') this.phase = 'idle';
  }

  /** Checks in when idle and connected with a session; otherwise does nothing. */
  async checkIn(): Promise<void> {
    const { options } = this;
    const socket = options.connection();
    if (!socket || this.phase !== 'idle') return;
    this.phase = 'waiting';
    const seq = ++this.seq;
    try {
      const result = await callWithAck(
        socket,
        'checkin',
        {
          taskId: options.taskId,
          eligibility: await options.eligibility(),
          budget: options.budget,
          adapterVersion: options.adapterVersion(),
        },
        options.ackTimeoutMs,
      );
      if (result.status === 'retry' && result.reason === 'task-stopped') {
        options.logger.info({ taskId: options.taskId }, 'the task runs no more rounds; stopping');
        options.onTaskStopped();
      } else if (result.status === 'retry') {
        this.phase = 'idle';
        options.logger.debug(
          { reason: result.reason, retryAfterMs: result.retryAfterMs },
          'check-in deferred',
        );
        this.schedule(result.retryAfterMs);
      } else {
        options.schedule(() => {
          if (this.phase === 'waiting' && this.seq === seq) {
            this.phase = 'idle';
            void this.checkIn();
          }
        }, options.planWaitMs);
      }
    } catch (error) {
      if (this.phase === 'waiting') this.phase = 'idle';
      if (error instanceof AckLostError) {
        // After a disconnect, re-authentication checks in again. An ack that timed out on a live
        // connection has nobody to do that: without a retry the device would sit idle for good.
        if (socket.connected) {
          options.events.error(error, false);
          this.schedule(jittered(options.retryDelayMs));
        }
        return;
      }
      options.events.error(error, false);
      this.schedule(options.retryDelayMs);
    }
  }

  private schedule(delayMs: number): void {
    this.options.schedule(() => void this.checkIn(), delayMs);
  }
}

/** `ms` spread over [0.5, 1.5)·ms, so that a fleet told the same thing does not act in lockstep. */
function jittered(ms: number): number {
  return Math.round(ms * (0.5 + Math.random()));
}
