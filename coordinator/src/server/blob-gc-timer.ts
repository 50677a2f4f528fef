import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import {
  DEFAULT_BLOB_GC_GRACE_MS,
  DEFAULT_BLOB_GC_INTERVAL_MS,
  collectBlobGarbage,
  type BlobGcOptions,
  type BlobGcResult,
} from '../shared/blob-store/index.js';

/** When the coordinator sweeps its blob store. */
export interface BlobGcSchedule {
  /** Unreferenced blobs used within this many ms are kept. Default 3 600 000 (1 h). */
  graceMs?: number;
  /** Milliseconds between sweeps (±10% jitter, so processes drift apart). Default 600 000 (10 min). */
  intervalMs?: number;
}

export interface BlobGcTimer {
  /** Runs one sweep now (tests, operators' tools). */
  runNow(): Promise<BlobGcResult>;
  /** Stops the timer and waits for a sweep in progress. */
  stop(): Promise<void>;
}

/** Sweeps the blob store every `intervalMs` (the first sweep one interval after start). */
export function startBlobGc(
  options: Omit<BlobGcOptions, 'graceMs'> & BlobGcSchedule & { logger: Logger },
): BlobGcTimer {
  const intervalMs = options.intervalMs ?? DEFAULT_BLOB_GC_INTERVAL_MS;
  const graceMs = options.graceMs ?? DEFAULT_BLOB_GC_GRACE_MS;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;

  const sweep = async (): Promise<BlobGcResult> => {
    const startedAt = Date.now();
    const result = await collectBlobGarbage({ ...options, graceMs });
    if (result.swept)
      options.logger.info({ ...result, startedAt, ms: Date.now() - startedAt }, 'blob garbage collection');
    return result;
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(
      () => {
        running = sweep()
          .catch((error: unknown) => options.logger.warn({ err: error }, 'blob garbage collection failed'))
          .finally(schedule);
      },
      intervalMs * (0.9 + 0.2 * Math.random()),
    );
    timer.unref();
  };
  schedule();
  return {
    runNow: () => {
      const run = running.then(sweep, sweep);
      running = run.catch(() => undefined);
      return run;
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running.catch(() => undefined);
    },
  };
}

/**
 * The sweep-lock name of a blob store: every process on one Redis prefix shares a Redis store;
 * a local directory is shared by the processes of one host that use that path.
 */
export function blobStoreId(store: { kind: 'redis' } | { kind: 'local'; dir: string }): string {
  if (store.kind === 'redis') return 'redis';
  return `local-${createHash('sha256')
    .update(`${hostname()}:${resolve(store.dir)}`)
    .digest('hex')
    .slice(0, 16)}`;
}
