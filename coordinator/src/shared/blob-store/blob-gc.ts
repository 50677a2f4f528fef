// Blob garbage collection. A blob is deleted when nothing needs it and it has not been used for
// a grace period. "Needs" is read from Redis, which every coordinator and worker share:
//
//   - the base model of every task and every artifact of every stored manifest (and anything in
//     the fleet-readable set), the worker's optimizer state and kept promoted steps of every task
//   - retained deltas until their retention ends (`retainedDeltaDigests`)
//   - the accepted updates of every round in flight (not COMMITTED, REJECTED or ABANDONED)
//   - and, by time, anything written, re-uploaded or put again since the oldest round in flight
//     opened: a delta uploaded but not yet submitted, a worker's shard sums and candidates
//
// Everything else (junk uploads, deltas of decided rounds that are not retained, aggregates,
// blobs an operator uploaded but never registered) goes once it is older than the grace period.
// A sweep holds a lock in Redis per store, so several coordinator processes sweep one at a time.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { redisKeys, type RedisKeys } from '../keys.js';
import { retainedDeltaDigests } from '../round-log/retention.js';
import type { AdapterRegistry } from '../adapter-registry.js';
import type { TaskRegistry } from '../task-registry.js';
import { BlobAccess } from './blob-access.js';
import { manifestBlobDigests } from './manifest-blobs.js';
import type { BlobStore } from './types.js';
import { runScript } from '../redis-script.js';

/** Default grace period: a blob nothing references survives this long after its last use, 1 h. */
export const DEFAULT_BLOB_GC_GRACE_MS = 3_600_000;
/** Default time between sweeps: 10 min. */
export const DEFAULT_BLOB_GC_INTERVAL_MS = 600_000;
/** A sweep's lock expires this long after its last refresh, should its process die: 5 min. */
const LOCK_TTL_MS = 300_000;

const TERMINAL = new Set(['COMMITTED', 'REJECTED', 'ABANDONED']);

/** The part of the worker's per-task state that names a blob (worker/job/worker-state.ts). */
const WorkerStateBlobSchema = z.object({ optimizer: z.object({ digest: z.string() }).optional() });
/** The part of a kept promoted step that names its blob (worker/job/promoted-step.ts). */
const PromotedStepBlobSchema = z.object({ digest: z.string() });
/** The part of an accepted-update record that names its blob (server/accepted-update.ts). */
const AcceptedBlobSchema = z.object({ blobDigest: z.string() });

export interface BlobGcOptions {
  redis: Redis;
  /** Redis key prefix, default `flotilla`. */
  prefix?: string;
  blobs: BlobStore;
  tasks: TaskRegistry;
  adapters: AdapterRegistry;
  /** Unreferenced blobs used (written, re-uploaded, put) within this many ms are kept. Default 1 h. */
  graceMs?: number;
  /**
   * Names the store for the sweep lock: processes sharing one store (a Redis store, or one
   * directory on one host) must pass the same id. Default `default`.
   */
  storeId?: string;
  /** Clock, epoch ms; default Date.now. */
  now?: () => number;
}

export interface BlobGcResult {
  /** False when another process held the sweep lock (nothing was done). */
  swept: boolean;
  scanned: number;
  /** Kept because something in Redis needs them. */
  referenced: number;
  /** Kept because used after the cut-off (grace period, or a round in flight). */
  recent: number;
  deleted: number;
  deletedBytes: number;
  /** Temp files of dead uploads removed (local store). */
  staleTemps: number;
  /** Blobs used before this time (epoch ms) and needed by nothing were deleted. */
  cutoff: number;
}

interface LiveSet {
  digests: Set<string>;
  /** `openedAt` of the oldest round in flight, or null. */
  oldestInFlight: number | null;
}

async function liveBlobs(
  redis: Redis,
  keys: RedisKeys,
  options: BlobGcOptions,
  now: number,
): Promise<LiveSet> {
  const digests = new Set<string>(await redis.smembers(keys.blobFleetReadable()));
  for (const digest of await retainedDeltaDigests(redis, keys.prefix, now)) digests.add(digest);
  let oldestInFlight: number | null = null;
  for (const { task } of await options.tasks.listTasks()) {
    digests.add(task.baseModel.digest);
    for (const signed of await options.adapters.listManifests(task.taskId))
      for (const digest of manifestBlobDigests(signed.manifest)) digests.add(digest);
    const state = await redis.get(keys.workerState(task.taskId));
    if (state !== null) {
      const parsed = WorkerStateBlobSchema.safeParse(JSON.parse(state));
      if (parsed.success && parsed.data.optimizer) digests.add(parsed.data.optimizer.digest);
    }
    for (const raw of await redis.zrange(keys.promotedSteps(task.taskId), 0, -1)) {
      const parsed = PromotedStepBlobSchema.safeParse(JSON.parse(raw));
      if (parsed.success) digests.add(parsed.data.digest);
    }
    const roundId = await redis.get(keys.currentRound(task.taskId));
    if (roundId === null) continue;
    const [roundState, openedAt] = await redis.hmget(keys.round(roundId), 'state', 'openedAt');
    if (!roundState || TERMINAL.has(roundState)) continue;
    const opened = Number(openedAt);
    if (Number.isFinite(opened)) oldestInFlight = Math.min(oldestInFlight ?? opened, opened);
    for (const raw of await redis.hvals(keys.roundUpdates(roundId))) {
      const parsed = AcceptedBlobSchema.safeParse(JSON.parse(raw));
      if (parsed.success) digests.add(parsed.data.blobDigest);
    }
  }
  return { digests, oldestInFlight };
}

// Refreshes the lock only while this sweep holds it. KEYS[1] lock. ARGV: token, ttl ms.
const REFRESH = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
`;
// Releases the lock only if this sweep holds it.
const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`;

/** One sweep of the blob store (see the header of this file for what is kept). */
export async function collectBlobGarbage(options: BlobGcOptions): Promise<BlobGcResult> {
  const { redis, blobs } = options;
  const keys = redisKeys(options.prefix);
  const now = (options.now ?? Date.now)();
  const graceMs = options.graceMs ?? DEFAULT_BLOB_GC_GRACE_MS;
  const result: BlobGcResult = {
    swept: false,
    scanned: 0,
    referenced: 0,
    recent: 0,
    deleted: 0,
    deletedBytes: 0,
    staleTemps: 0,
    cutoff: now - graceMs,
  };
  const lock = keys.blobGcLock(options.storeId ?? 'default');
  const token = randomBytes(8).toString('hex');
  if ((await redis.set(lock, token, 'PX', LOCK_TTL_MS, 'NX')) !== 'OK') return result;
  try {
    result.swept = true;
    const live = await liveBlobs(redis, keys, options, now);
    // Nothing written since the oldest round in flight opened is collected: it may be that
    // round's upload not yet submitted, or a worker's intermediate result.
    result.cutoff = Math.min(now - graceMs, live.oldestInFlight ?? Number.POSITIVE_INFINITY);
    const access = new BlobAccess({ redis, prefix: keys.prefix });
    for await (const blob of blobs.list()) {
      result.scanned++;
      if (result.scanned % 1000 === 0) await runScript(redis, REFRESH, 1, lock, token, LOCK_TTL_MS);
      if (live.digests.has(blob.digest)) result.referenced++;
      else if (blob.lastUsedAt >= result.cutoff) result.recent++;
      else if (await blobs.deleteIfUnused(blob.digest, result.cutoff)) {
        await access.forget(blob.digest);
        result.deleted++;
        result.deletedBytes += blob.bytes;
      } else result.recent++;
    }
    result.staleTemps = await blobs.removeStaleTemps(now - graceMs);
    return result;
  } finally {
    await runScript(redis, RELEASE, 1, lock, token).catch(() => undefined);
  }
}
