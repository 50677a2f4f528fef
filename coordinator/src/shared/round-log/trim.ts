import type { Redis } from 'ioredis';
import { z } from 'zod';
import { FlotillaError } from '@flotilla/protocol';
import { roundLogKeys } from './keys.js';
import { parseLogState } from './tree-store.js';
import { runScript } from '../redis-script.js';

// Trimming the round log's Redis stream. A line may leave the stream once (a) every registered
// mirror file holds it durably (`{prefix}:roundlog:mirrors`, written by syncMirror after its
// fsync) and (b) a signed tree head covers it (the head key's `signedSeq`); the newest
// `keepLines` lines always stay. One script reads all three and trims, so an append or a mirror
// registration cannot slip in between the check and the XTRIM. Tree nodes are not touched:
// inclusion and consistency proofs of trimmed records still come from Redis.

/** Default of `keepLines`: the newest lines kept in the stream (about 5 MB of `update.accepted` lines). */
export const DEFAULT_KEEP_LINES = 10_000;

/**
 * KEYS: head, stream, mirrors. ARGV: keepLines.
 * Returns {lines removed, last seq that may leave the stream (−1: none), slowest mirror id ('' when
 * none is registered), its seq, its time (epoch ms), the log's last seq}.
 * A head without `signedSeq` (written before trimming) counts as covered only when fully signed.
 * No registered mirror: nothing is trimmed (the stream would be the only copy).
 */
const TRIM_SCRIPT = `
local raw = redis.call('GET', KEYS[1])
if not raw then return {0, -1, '', -1, 0, -1} end
local state = cjson.decode(raw)
local covered = state.signedSeq
if type(covered) ~= 'number' then
  covered = -1
  if type(state.signed) == 'table' and state.signed.treeHead.treeSize == state.leaves then covered = state.seq end
end
local mirrored, slowest, slowestAt = -1, '', 0
local all = redis.call('HGETALL', KEYS[3])
for i = 1, #all, 2 do
  local entry = cjson.decode(all[i + 1])
  if slowest == '' or entry.seq < mirrored then mirrored, slowest, slowestAt = entry.seq, all[i], entry.at end
end
local through = math.min(state.seq - tonumber(ARGV[1]), covered, mirrored)
local removed = 0
if through >= 0 then
  removed = redis.call('XTRIM', KEYS[2], 'MINID', string.format('0-%d', through + 2))
end
return {removed, through, slowest, mirrored, slowestAt, state.seq}
`;

/** A value of `{prefix}:roundlog:mirrors` (written by syncMirror). */
const MirrorEntrySchema = z.object({
  /** Last line the file durably holds (−1: none). */
  seq: z.number().int().min(-1),
  /** When that was recorded, epoch ms. */
  at: z.number(),
});

/** A registered mirror that holds the stream beyond `keepLines` (it stopped advancing). */
export interface LaggingMirror {
  /** `mirrorIdOf(filePath)`: host and path. */
  mirrorId: string;
  /** Last line the mirror holds (−1: none). */
  seq: number;
  /** When it last synced, epoch ms. */
  at: number;
  /** Lines of the log it lacks. */
  behind: number;
}

export interface TrimResult {
  /** Lines removed from the stream by this call. */
  removed: number;
  /** Every line through this seq may be gone from the stream (−1: none). */
  through: number;
  /** Set when the slowest mirror, not `keepLines` or signing, is what keeps lines in the stream. */
  lagging: LaggingMirror | null;
}

/** Trims the stream to the watermark (see the file header); `keepLines` must be ≥ 1. */
export async function trimRoundLog(redis: Redis, prefix: string, keepLines: number): Promise<TrimResult> {
  const keys = roundLogKeys(prefix);
  const [removed, through, mirrorId, seq, at, last] = (await runScript(
    redis,
    TRIM_SCRIPT,
    3,
    keys.head,
    keys.stream,
    keys.mirrors,
    String(keepLines),
  )) as [number, number, string, number, number, number];
  const lagging =
    mirrorId !== '' && seq < last - keepLines ? { mirrorId, seq, at, behind: last - seq } : null;
  return { removed, through, lagging };
}

/** The registered mirrors: id, last line held, last sync (epoch ms); for `flotilla audit mirrors`. */
export async function listRoundLogMirrors(
  redis: Redis,
  prefix: string,
): Promise<Array<{ mirrorId: string; seq: number; at: number }>> {
  const all = await redis.hgetall(roundLogKeys(prefix).mirrors);
  return Object.entries(all)
    .map(([mirrorId, value]) => {
      const entry = MirrorEntrySchema.safeParse(JSON.parse(value));
      if (!entry.success)
        throw new FlotillaError('INTERNAL', `round-log mirror entry ${mirrorId} is corrupt`);
      return { mirrorId, ...entry.data };
    })
    .sort((a, b) => a.mirrorId.localeCompare(b.mirrorId));
}

/** What the log holds where: for `flotilla audit mirrors` and the coordinator's gauges. */
export interface RoundLogStorage {
  /** Lines in the log (records and tree heads). */
  lines: number;
  /** Lines still in the Redis stream, and the first of them (null: none). */
  streamLines: number;
  streamFirst: number | null;
  /** Every registered mirror, with the lines it lacks. */
  mirrors: Array<{ mirrorId: string; seq: number; at: number; behind: number }>;
}

export async function roundLogStorage(redis: Redis, prefix: string): Promise<RoundLogStorage> {
  const keys = roundLogKeys(prefix);
  const state = parseLogState(await redis.get(keys.head), keys.head);
  const last = state?.seq ?? -1;
  const [first] = await redis.xrange(keys.stream, '-', '+', 'COUNT', 1);
  return {
    lines: last + 1,
    streamLines: await redis.xlen(keys.stream),
    streamFirst: first ? Number(first[0].slice(2)) - 1 : null,
    mirrors: (await listRoundLogMirrors(redis, prefix)).map((m) => ({ ...m, behind: last - m.seq })),
  };
}

/**
 * Forgets a mirror (its host is gone for good), so it no longer holds lines in the stream.
 * Resolves to false when no such mirror was registered. A live process re-registers its mirror
 * at its next sync.
 */
export async function removeRoundLogMirror(redis: Redis, prefix: string, mirrorId: string): Promise<boolean> {
  return (await redis.hdel(roundLogKeys(prefix).mirrors, mirrorId)) === 1;
}
