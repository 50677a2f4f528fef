import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import { FlotillaError } from '@flotilla/protocol';
import type { DeviceLogger } from './logger.js';

/**
 * Consecutive failed connection attempts to one coordinator after which the next URL is tried
 * (round robin). Default 2: a stopped process refuses at once, a restart gets one more try.
 */
export const DEFAULT_FAILOVER_AFTER = 2;

export interface FailoverSocketOptions {
  /** Coordinators of one fleet (sharing one Redis), tried in this order. At least one. */
  urls: readonly string[];
  /** Options of every socket (auth, transports, reconnection delay). */
  socketOptions: Partial<ManagerOptions & SocketOptions>;
  /** Default DEFAULT_FAILOVER_AFTER. */
  failoverAfter?: number;
  /** Delay before a reconnection the device starts itself (after a server-side disconnect), ms. */
  reconnectDelayMs: number;
  /** Wires the device's handlers on each socket, the first and every one after a failover. */
  attach: (socket: Socket) => void;
  /** True once the device stopped: nothing reconnects any more. */
  stopped: () => boolean;
  /** Schedules on the device's timers (cancelled when it stops). */
  schedule: (action: () => void, delayMs: number) => void;
  /** Told when the device moves to another coordinator. */
  onFailover?: (url: string) => void;
  logger: DeviceLogger;
}

/** Parses `urls`: at least one, each an http(s) URL. */
export function coordinatorUrls(url: string | readonly string[]): string[] {
  const urls = (typeof url === 'string' ? [url] : [...url]).map((u) => u.trim()).filter((u) => u !== '');
  if (urls.length === 0) throw new FlotillaError('BAD_REQUEST', 'no coordinator URL given');
  for (const u of urls)
    if (!/^https?:\/\/[^/\s]+/.test(u))
      throw new FlotillaError('BAD_REQUEST', `coordinator URL "${u}" is not an http(s) URL`);
  return urls;
}

/**
 * The device's socket.io connection to one of several coordinators serving one fleet. It connects
 * to the first URL; after `failoverAfter` failed attempts in a row on the current one (it stopped,
 * or cannot be reached), it closes that socket and connects to the next URL, whose challenge the
 * device answers as on any reconnection: sessions live in the shared Redis, so a round in progress
 * carries on with the other process. socket.io's own reconnection handles a blip of the current one.
 */
export class FailoverSocket {
  private readonly urls: string[];
  private index = 0;
  private failures = 0;
  private current: Socket;

  constructor(private readonly options: FailoverSocketOptions) {
    this.urls = coordinatorUrls(options.urls);
    this.current = this.open();
  }

  /** The socket in use (replaced on failover). */
  get socket(): Socket {
    return this.current;
  }

  /** The coordinator in use: socket.io and HTTP go to the same one. */
  get url(): string {
    return this.urls[this.index] ?? '';
  }

  disconnect(): void {
    this.current.disconnect();
  }

  private open(): Socket {
    // forceNew: a coordinator tried again later gets a fresh manager, not the closed one.
    const socket = io(this.url, { ...this.options.socketOptions, forceNew: true });
    this.options.attach(socket);
    socket.on('connect', () => (this.failures = 0));
    // Emitted for every failed attempt, the first and socket.io's own reconnections alike.
    socket.on('connect_error', () => this.failed(socket));
    socket.on('disconnect', () => {
      // After a server-side disconnect socket.io does not reconnect by itself.
      if (!this.options.stopped() && !socket.active)
        this.options.schedule(() => this.reconnect(socket), this.options.reconnectDelayMs);
    });
    return socket;
  }

  private failed(socket: Socket): void {
    if (socket !== this.current || this.options.stopped()) return;
    this.failures += 1;
    if (this.urls.length > 1 && this.failures >= (this.options.failoverAfter ?? DEFAULT_FAILOVER_AFTER)) {
      this.failOver();
      return;
    }
    if (!socket.active) this.options.schedule(() => this.reconnect(socket), this.options.reconnectDelayMs);
  }

  private reconnect(socket: Socket): void {
    if (socket === this.current && !this.options.stopped() && !socket.connected) socket.connect();
  }

  private failOver(): void {
    const previous = this.current;
    const from = this.url;
    this.index = (this.index + 1) % this.urls.length;
    this.failures = 0;
    // The old socket's handlers must not act any more, nor its manager keep retrying.
    previous.removeAllListeners();
    previous.io.removeAllListeners();
    previous.disconnect();
    this.options.logger.warn({ from, to: this.url }, 'coordinator unreachable; failing over');
    this.current = this.open();
    this.options.onFailover?.(this.url);
  }
}
