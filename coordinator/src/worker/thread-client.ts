import type { ResourceLimits, Worker } from 'node:worker_threads';
import { parentPort } from 'node:worker_threads';
import { FlotillaError, at, type ErrorCode } from '@flotilla/protocol';
import { startTsWorker } from '../shared/ts-worker.js';

// One worker thread that answers requests, so long math never blocks the BullMQ worker's event
// loop (lock renewals, stalled-job checks). Arguments and results cross by structured clone.

type Reply<Result> =
  { id: number; ok: true; result: Result } | { id: number; ok: false; code: ErrorCode; message: string };

export class ThreadClient<Request, Result> {
  private worker: Worker | null = null;
  private closed = false;
  private next = 0;
  private readonly pending = new Map<number, { resolve: (r: Result) => void; reject: (e: Error) => void }>();

  /**
   * `entry`: a module that calls {@link serveThreadRequests}. `resourceLimits`: the thread's V8
   * heap limits (Node's defaults when absent).
   */
  constructor(
    private readonly entry: URL,
    private readonly name: string,
    private readonly resourceLimits?: ResourceLimits,
  ) {}

  // A thread that died (out of memory, a crash) fails the requests in hand; the next request
  // starts a fresh one instead of posting into a dead thread and waiting forever.
  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = startTsWorker(
      this.entry,
      null,
      this.resourceLimits ? { resourceLimits: this.resourceLimits } : {},
    );
    worker.on('message', (reply: Reply<Result>) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(new FlotillaError(reply.code, reply.message));
    });
    worker.on('error', (error) => this.failAll(error));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = null;
      this.failAll(new FlotillaError('INTERNAL', `the ${this.name} thread exited (code ${code})`));
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  /** Requests sent and not yet answered. */
  get pendingCount(): number {
    return this.pending.size;
  }

  private failAll(error: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }

  /** Starts the thread now, so its module loading happens while the worker is idle. */
  start(): void {
    if (!this.closed) this.thread();
  }

  /**
   * `transfer`: buffers of the request moved to the thread instead of copied (they are unusable
   * here afterwards); a buffer listed twice is moved once.
   */
  request(request: Request, transfer: readonly ArrayBufferLike[] = []): Promise<Result> {
    if (this.closed)
      return Promise.reject(new FlotillaError('INTERNAL', `the ${this.name} thread is closed`));
    const worker = this.thread();
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const moved = new Set(transfer.filter((b): b is ArrayBuffer => b instanceof ArrayBuffer));
      worker.postMessage({ id, request }, [...moved]);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }
}

/**
 * Several threads running the same entry: each request goes to the thread with the fewest
 * requests in hand, so two shard jobs compute on two cores while the event loop loads the next.
 */
export class ThreadPool<Request, Result> {
  private readonly clients: Array<ThreadClient<Request, Result>>;

  /** `size`: threads (at least 1), each started on its first request (or by {@link start}). */
  constructor(entry: URL, name: string, size: number) {
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError(`thread pool size must be >= 1, got ${size}`);
    this.clients = Array.from(
      { length: size },
      (_, i) => new ThreadClient<Request, Result>(entry, `${name} #${i + 1}`),
    );
  }

  get size(): number {
    return this.clients.length;
  }

  start(): void {
    for (const client of this.clients) client.start();
  }

  request(request: Request, transfer: readonly ArrayBufferLike[] = []): Promise<Result> {
    let idlest = at(this.clients, 0);
    for (const client of this.clients) if (client.pendingCount < idlest.pendingCount) idlest = client;
    return idlest.request(request, transfer);
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((client) => client.close()));
  }
}

/** The thread's side: answers each `{ id, request }` with `handle(request)` or its error. */
export function serveThreadRequests<Request, Result>(handle: (request: Request) => Result): void {
  parentPort?.on('message', ({ id, request }: { id: number; request: Request }) => {
    try {
      parentPort?.postMessage({ id, ok: true, result: handle(request) });
    } catch (error) {
      parentPort?.postMessage({
        id,
        ok: false,
        code: error instanceof FlotillaError ? error.code : 'INTERNAL',
        message: error instanceof Error ? error.message : String(error),
      });
    }
  });
}
