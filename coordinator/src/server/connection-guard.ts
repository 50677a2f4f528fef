/** Per-device bounds on sockets, so one identity cannot hold an unbounded number of them. */
export interface ConnectionLimitOptions {
  /**
   * Sockets of one device id still owing the answer to `auth:challenge`. Past it the oldest of
   * them is closed (`RATE_LIMITED`). Evicting the oldest, rather than refusing the newest, means a
   * flood under a stolen device id cannot lock the real device out. Default 4.
   */
  maxPendingPerDevice: number;
  /**
   * Authenticated sockets kept per device id; a newer authenticated socket closes the oldest
   * (`RATE_LIMITED`). A device is one process: its newest connection is the live one, an older
   * one is a half-open leftover of a network change. Default 1.
   */
  maxAuthenticatedPerDevice: number;
  /** Milliseconds a socket may take to answer `auth:challenge` before it is closed. Default 10 000. */
  authTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimitOptions = {
  maxPendingPerDevice: 4,
  maxAuthenticatedPerDevice: 1,
  authTimeoutMs: 10_000,
};

/** Closes one socket, telling it why. */
export type CloseSocket = (code: 'RATE_LIMITED' | 'UNAUTHORIZED' | 'REVOKED_DEVICE', message: string) => void;

/** Counters for tests and metrics. */
export interface ConnectionGuardStats {
  /** Pending sockets closed because newer ones of the same device id arrived. */
  evictedPending: number;
  /** Authenticated sockets closed because a newer one of the same device authenticated. */
  evictedAuthenticated: number;
  /** Sockets closed for not answering the challenge in time. */
  authTimeouts: number;
}

interface Pending {
  close: CloseSocket;
  timer: NodeJS.Timeout;
}

/** Tracks the sockets of every device id on this process; Maps keep insertion order = age. */
export class ConnectionGuard {
  readonly stats: ConnectionGuardStats = { evictedPending: 0, evictedAuthenticated: 0, authTimeouts: 0 };
  private readonly pending = new Map<string, Map<string, Pending>>();
  private readonly authenticated = new Map<string, Map<string, CloseSocket>>();

  constructor(private readonly limits: ConnectionLimitOptions = DEFAULT_CONNECTION_LIMITS) {}

  /** A socket claiming `deviceId` connected and was sent its challenge. */
  admit(deviceId: string, socketId: string, close: CloseSocket): void {
    const sockets = this.pending.get(deviceId) ?? new Map<string, Pending>();
    this.pending.set(deviceId, sockets);
    const timer = setTimeout(() => {
      this.stats.authTimeouts += 1;
      this.release(deviceId, socketId);
      close('UNAUTHORIZED', 'auth:challenge was not answered in time');
    }, this.limits.authTimeoutMs);
    timer.unref();
    sockets.set(socketId, { close, timer });
    while (sockets.size > this.limits.maxPendingPerDevice) {
      const [oldestId, oldest] = sockets.entries().next().value ?? [];
      if (oldestId === undefined || !oldest) break;
      this.stats.evictedPending += 1;
      this.release(deviceId, oldestId);
      oldest.close('RATE_LIMITED', 'too many connections for this device id; closing the oldest');
    }
  }

  /** The socket answered its challenge: it now counts against the authenticated bound. */
  authenticate(deviceId: string, socketId: string, close: CloseSocket): void {
    const waiting = this.pending.get(deviceId);
    const entry = waiting?.get(socketId);
    if (entry) clearTimeout(entry.timer);
    waiting?.delete(socketId);
    if (waiting?.size === 0) this.pending.delete(deviceId);
    const sockets = this.authenticated.get(deviceId) ?? new Map<string, CloseSocket>();
    this.authenticated.set(deviceId, sockets);
    sockets.set(socketId, close);
    while (sockets.size > this.limits.maxAuthenticatedPerDevice) {
      const [oldestId, oldest] = sockets.entries().next().value ?? [];
      if (oldestId === undefined || !oldest) break;
      this.stats.evictedAuthenticated += 1;
      sockets.delete(oldestId);
      oldest('RATE_LIMITED', 'superseded by a newer connection of this device');
    }
  }

  /** The socket is gone (disconnect, eviction, timeout). Idempotent. */
  release(deviceId: string, socketId: string): void {
    const waiting = this.pending.get(deviceId);
    const entry = waiting?.get(socketId);
    if (entry) clearTimeout(entry.timer);
    waiting?.delete(socketId);
    if (waiting?.size === 0) this.pending.delete(deviceId);
    const sockets = this.authenticated.get(deviceId);
    sockets?.delete(socketId);
    if (sockets?.size === 0) this.authenticated.delete(deviceId);
  }

  /** Closes every socket of `deviceId` on this process, waiting or authenticated (revocation). */
  closeDevice(deviceId: string, code: Parameters<CloseSocket>[0], message: string): number {
    const closers = [
      ...[...(this.pending.get(deviceId)?.values() ?? [])].map((p) => p.close),
      ...(this.authenticated.get(deviceId)?.values() ?? []),
    ];
    for (const socketId of [
      ...(this.pending.get(deviceId)?.keys() ?? []),
      ...(this.authenticated.get(deviceId)?.keys() ?? []),
    ])
      this.release(deviceId, socketId);
    for (const close of closers) close(code, message);
    return closers.length;
  }

  /** Sockets tracked for `deviceId`: still pending, and authenticated. */
  count(deviceId: string): { pending: number; authenticated: number } {
    return {
      pending: this.pending.get(deviceId)?.size ?? 0,
      authenticated: this.authenticated.get(deviceId)?.size ?? 0,
    };
  }
}
