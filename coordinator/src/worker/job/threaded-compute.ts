import type { Worker } from 'node:worker_threads';
import { FlotillaError, type ErrorCode } from '@flotilla/protocol';
import { siblingModule, startTsWorker } from '../../shared/ts-worker.js';
import type { ComputeRoundInput, ComputeRoundResult } from './compute-round.js';

type Reply =
  | { id: number; ok: true; result: ComputeRoundResult }
  | { id: number; ok: false; code: ErrorCode; message: string };

/**
 * A worker thread that runs `computeRound`, so aggregation never blocks the BullMQ worker's event
 * loop (lock renewals, stalled-job checks). Tensors cross by structured clone.
 */
export class ThreadedCompute {
  private worker: Worker | null = null;
  private closed = false;
  private next = 0;
  private readonly pending = new Map<
    number,
    { resolve: (r: ComputeRoundResult) => void; reject: (e: Error) => void }
  >();

  // A thread that died (out of memory, a crash) fails the rounds in hand; the next run starts a
  // fresh one instead of posting into a dead thread and waiting forever.
  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = startTsWorker(siblingModule('compute-thread', import.meta.url), null);
    worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(new FlotillaError(reply.code, reply.message));
    });
    worker.on('error', (error) => this.failAll(error));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = null;
      this.failAll(new FlotillaError('INTERNAL', `the compute thread exited (code ${code})`));
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private failAll(error: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }

  /**
   * Starts the thread now, so its module loading (about a second) happens while the worker is
   * idle rather than in the first round's critical path.
   */
  start(): void {
    if (!this.closed) this.thread();
  }

  /** `seed` makes the DP noise reproducible; null draws it from the platform CSPRNG. */
  run(input: Omit<ComputeRoundInput, 'rng'>, seed: string | null): Promise<ComputeRoundResult> {
    if (this.closed) return Promise.reject(new FlotillaError('INTERNAL', 'the compute thread is closed'));
    const worker = this.thread();
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, input, seed });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }
}
