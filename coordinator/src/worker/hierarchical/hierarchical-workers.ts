import { availableParallelism } from 'node:os';
import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { jobLockSettings } from '../job-locks.js';
import { isNeverRetried, unrecoverable } from '../never-retry.js';
import { ReadArenaPool, type BlobStore } from '../../shared/blob-store/index.js';
import { COMBINE_QUEUE, SHARD_STATS_QUEUE, SHARD_SUM_QUEUE } from '../../shared/hierarchical-flow.js';
import { DEFAULT_PREFIX } from '../../shared/keys.js';
import { siblingModule } from '../../shared/ts-worker.js';
import { ThreadPool } from '../thread-client.js';
import { reserveThreadYoungGeneration } from '../thread-heap.js';
import {
  inProcessShardMath,
  requestBuffers,
  type ShardMathRequest,
  type ShardMathRunner,
  type ShardSumAnswer,
} from './shard-math.js';
import { processCombine, processShardStats, processShardSum } from './shard-jobs.js';

/**
 * Math threads of the shard jobs: one per core, at most two. The event loop's share of a shard
 * (reading the deltas) is a small fraction of the threads' math (digests, checks, sums, screen), so
 * even on 2 cores two threads keep both busy: there the 1,000-update round of `npm run bench`
 * took 2.8–3.2 s with two against 3.6–3.7 s with one (docs/benchmarks.md).
 */
export const DEFAULT_SHARD_MATH_THREADS = Math.max(1, Math.min(2, availableParallelism()));

export interface HierarchicalWorkersOptions {
  connection: ConnectionOptions;
  /** BullMQ prefix. Default `flotilla`. */
  prefix?: string;
  /** Where the deltas are and where shard sums and means go (by content address). */
  blobs: BlobStore;
  /**
   * Shard jobs (sum and stats passes) processed at once by this process. Default `mathThreads` + 1:
   * while the threads compute, the event loop loads the next shard's deltas.
   */
  concurrency?: number;
  /**
   * Worker threads for the shards' math (sums, medians, screens), off the event loop that renews
   * the job locks; 0 computes on the event loop. Default {@link DEFAULT_SHARD_MATH_THREADS}.
   */
  mathThreads?: number;
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
  /** Starts the math threads (on the first shard job otherwise), ahead of a round that needs them. */
  warmUp(): void;
  close(): Promise<void>;
}

/**
 * The shard math on the pool's threads. A job's vectors are its own: moved to the thread, not
 * copied (60 MB for a shard of 100 here). The threads' young generation is reserved when they are
 * first wanted (here, or by `warmUp`): the flag reaches every thread started after it, and a
 * process whose rounds never go hierarchical (a simulation's device threads) should not pay it.
 */
function threadMath(pool: ThreadPool<ShardMathRequest, ShardSumAnswer | number[]>): ShardMathRunner {
  const ask = (request: ShardMathRequest): Promise<ShardSumAnswer | number[]> => {
    reserveThreadYoungGeneration();
    return pool.request(request, requestBuffers(request));
  };
  return {
    sum: (request) => ask(request) as Promise<ShardSumAnswer>,
    stats: (request) => ask(request) as Promise<number[]>,
  };
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
  const threads = options.mathThreads ?? DEFAULT_SHARD_MATH_THREADS;
  // Not started here: a process whose rounds never go hierarchical (simulations, small fleets)
  // should not pay the threads' modules in memory. `warmUp` or the first shard job starts them.
  const pool =
    threads === 0
      ? null
      : new ThreadPool<ShardMathRequest, ShardSumAnswer | number[]>(
          siblingModule('stats-thread', import.meta.url),
          'shard math',
          threads,
        );
  const math: ShardMathRunner = pool ? threadMath(pool) : inProcessShardMath;
  const shardOpts = { ...opts, concurrency: options.concurrency ?? threads + 1 };
  // The shards' deltas are read into arenas reused job after job (read-arena.ts).
  const arenas = new ReadArenaPool({ keep: shardOpts.concurrency });
  const run =
    <T>(what: string, work: (job: Job) => Promise<T>) =>
    async (job: Job): Promise<T> => {
      const result = await work(job).catch(failHard);
      logger?.info({ jobId: job.id }, what);
      return result;
    };
  const shardWorker = new Worker(
    SHARD_SUM_QUEUE,
    run('shard summed', (job) => processShardSum(job.data, blobs, math, arenas)),
    shardOpts,
  );
  const statsWorker = new Worker(
    SHARD_STATS_QUEUE,
    run('shard audited', (job) => processShardStats(job.data, blobs, math, arenas)),
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
    warmUp() {
      if (pool === null) return;
      reserveThreadYoungGeneration(); // see threadMath
      pool.start();
    },
    async close() {
      await Promise.all(all.map((w) => w.close()));
      await pool?.close();
      arenas.clear();
    },
  };
}
