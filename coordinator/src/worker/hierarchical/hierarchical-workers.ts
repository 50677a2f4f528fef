import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { jobLockSettings } from '../job-locks.js';
import { isNeverRetried, unrecoverable } from '../never-retry.js';
import type { BlobStore } from '../../shared/blob-store/index.js';
import { COMBINE_QUEUE, SHARD_STATS_QUEUE, SHARD_SUM_QUEUE } from '../../shared/hierarchical-flow.js';
import { DEFAULT_PREFIX } from '../../shared/keys.js';
import { siblingModule } from '../../shared/ts-worker.js';
import type { UpdateStats } from '../audit/reference.js';
import { ThreadClient } from '../thread-client.js';
import { processCombine, processShardStats, processShardSum, type ShardStatsMath } from './shard-jobs.js';

export interface HierarchicalWorkersOptions {
  connection: ConnectionOptions;
  /** BullMQ prefix. Default `flotilla`. */
  prefix?: string;
  /** Where the deltas are and where shard sums and means go (by content address). */
  blobs: BlobStore;
  /**
   * Shard jobs (sum and stats passes) processed at once by this process. Default 1, or 2 with the
   * stats thread: one shard's deltas then load while the thread screens another.
   */
  concurrency?: number;
  /** Screen shards in a worker thread, off the event loop that renews the job locks. Default true. */
  statsThread?: boolean;
  /** BullMQ job lock in ms (see the aggregation worker's). Default 10_000 (job-locks.ts). */
  lockDurationMs?: number;
  /** Stalled-job check period in ms. Default 5_000 (job-locks.ts). */
  stalledIntervalMs?: number;
  logger?: Logger;
}

export interface HierarchicalWorkers {
  shardWorker: Worker;
  statsWorker: Worker;
  combineWorker: Worker;
  close(): Promise<void>;
}

function failHard(error: unknown): never {
  throw isNeverRetried(error) ? unrecoverable(error) : error;
}

/**
 * Workers of the hierarchical rounds (see shared/hierarchical-flow.ts): shard sums, the audit's
 * per-shard second pass, and the combine step of a standalone flow. Any number of worker
 * processes may run them: BullMQ hands each shard to one of them, and a parent to one once all
 * its children have completed.
 */
export async function startHierarchicalWorkers(
  options: HierarchicalWorkersOptions,
): Promise<HierarchicalWorkers> {
  const { blobs, logger } = options;
  const opts = {
    connection: options.connection,
    prefix: options.prefix ?? DEFAULT_PREFIX,
    ...jobLockSettings(options),
  };
  // The stats pass is the long math of a large round: in a thread it cannot hold up lock renewals,
  // and the event loop loads the next shard meanwhile.
  const thread =
    options.statsThread === false
      ? null
      : new ThreadClient<Parameters<ShardStatsMath>[0], UpdateStats[]>(
          siblingModule('stats-thread', import.meta.url),
          'shard stats',
        );
  // Not started here: a process whose rounds never go hierarchical (simulations, small fleets)
  // should not pay a thread's modules in memory. The first shard screen starts it.
  const shardOpts = { ...opts, concurrency: options.concurrency ?? (thread ? 2 : 1) };
  const run =
    <T>(what: string, work: (job: Job) => Promise<T>) =>
    async (job: Job): Promise<T> => {
      const result = await work(job).catch(failHard);
      logger?.info({ jobId: job.id }, what);
      return result;
    };
  const shardWorker = new Worker(
    SHARD_SUM_QUEUE,
    run('shard summed', (job) => processShardSum(job.data, blobs)),
    shardOpts,
  );
  const statsWorker = new Worker(
    SHARD_STATS_QUEUE,
    run('shard audited', (job) =>
      processShardStats(
        job.data,
        blobs,
        // The vectors are this job's alone: moved to the thread, not copied (60 MB a shard).
        thread
          ? (input) =>
              thread.request(
                input,
                [...input.updates, input.reference].map((v) => v.buffer),
              )
          : undefined,
      ),
    ),
    shardOpts,
  );
  const combineWorker = new Worker(
    COMBINE_QUEUE,
    run('shard sums combined', async (job) => processCombine(job.data, await job.getChildrenValues(), blobs)),
    opts,
  );
  const all = [shardWorker, statsWorker, combineWorker];
  // BullMQ reports lost connections and failed lock renewals as 'error' events.
  for (const w of all)
    w.on('error', (error: Error) => logger?.warn({ err: error.message }, 'shard worker error'));
  await Promise.all(all.map((w) => w.waitUntilReady()));
  return {
    shardWorker,
    statsWorker,
    combineWorker,
    async close() {
      await Promise.all(all.map((w) => w.close()));
      await thread?.close();
    },
  };
}
