import type { Redis } from 'ioredis';
import { FlotillaError, MERKLE_HASH_BYTES } from '@flotilla/protocol';
import { roundLogKeys } from './keys.js';
import { COMPACT_FULL_SEGMENT, TREE_SEGMENT_NODES, nodeSlot } from './tree-segments.js';
import { TREE_IN_HASH, TREE_IN_SEGMENTS, parseLogState } from './tree-store.js';
import { runScript } from '../redis-script.js';

// Moving a format-2 log's tree from its hash (a field per node) into segment strings, while any
// number of writers keep appending. Each step is one short script that moves the next nodes of
// one segment from the hash to the end of the segment string and deletes them from the hash, so
// a node is always in exactly one place and readers (which look in the segment, then the hash)
// never miss it. Appends put a node in its segment when the segment ends right where the node
// goes, else in the hash (append-script.ts), so the hash drains level by level, in index order.
// Steps are idempotent: several processes may migrate at once. When the hash is gone, the head
// is moved to format 3 (which processes that only know format 2 refuse to append to).

/** Nodes moved per script call at most: ~1 ms of Redis time, so other clients are not held up. */
export const MIGRATION_STEP_NODES = 1024;

/**
 * KEYS: old tree hash, segment key. ARGV: level, first index of the segment, index to start at,
 * most nodes to move. Walks the segment's block from the start index: a node in the hash is moved
 * to the end of the segment string (or dropped from the hash when the string already holds the
 * same bytes); a node in the string is passed over. Returns {1, next index, moved} when the level
 * continues past this call, {0, index, moved} when the node at index exists nowhere (the level's
 * end), or {-1, field, detail} when the hash and the segment disagree.
 */
const MIGRATE_STEP_SCRIPT = `
local level, first = ARGV[1], tonumber(ARGV[2])
local index, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
local blockEnd = first + ${TREE_SEGMENT_NODES}
local moved = 0
local length = redis.call('STRLEN', KEYS[2])
if length % ${MERKLE_HASH_BYTES} ~= 0 then return {-1, KEYS[2], 'length ' .. length} end
while index < blockEnd and budget > 0 do
  local field = level .. ':' .. index
  local offset = ${MERKLE_HASH_BYTES} * (index - first)
  local value = redis.call('HGET', KEYS[1], field)
  if value then
    if #value ~= ${MERKLE_HASH_BYTES} then return {-1, field, #value .. ' bytes'} end
    if length == offset then
      redis.call('SETRANGE', KEYS[2], offset, value)
      ${COMPACT_FULL_SEGMENT('KEYS[2]', 'offset')}
      length = length + ${MERKLE_HASH_BYTES}
    elseif length < offset then
      return {-1, field, KEYS[2] .. ' ends at byte ' .. length .. ', before it'}
    elseif redis.call('GETRANGE', KEYS[2], offset, offset + ${MERKLE_HASH_BYTES - 1}) ~= value then
      return {-1, field, KEYS[2] .. ' holds other bytes'}
    end
    redis.call('HDEL', KEYS[1], field)
    moved = moved + 1
    budget = budget - 1
    index = index + 1
  elseif length > offset then
    index = first + length / ${MERKLE_HASH_BYTES}
  else
    return {0, index, moved}
  end
end
return {1, index, moved}
`;

/**
 * KEYS: head, old tree hash. Once the hash is gone, marks the head format 3 in place: writers
 * write the head as JSON beginning `{"format":2,` (LogStateSchema's first key), so the mark is a
 * change of that one digit, atomic with the check, whatever appends happen around it. Returns 1
 * when the head is format 3, 0 while the hash holds nodes (a writer put some there meanwhile).
 */
const FINISH_SCRIPT = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local raw = redis.call('GET', KEYS[1])
local before, after = '{"format":${TREE_IN_HASH},', '{"format":${TREE_IN_SEGMENTS},'
if raw and string.sub(raw, 1, #before) == before then
  redis.call('SET', KEYS[1], after .. string.sub(raw, #before + 1))
  return 1
end
if raw and string.sub(raw, 1, #after) == after then return 1 end
return redis.error_reply('round-log head ' .. KEYS[1] .. ' does not begin with ' .. before)
`;

export interface TreeMigrationOptions {
  redis: Redis;
  prefix: string;
  /** Nodes per script call; default `MIGRATION_STEP_NODES`. */
  stepNodes?: number;
  /**
   * Full passes over the levels before giving up while format-2 writers keep refilling the hash
   * (a process of an older version still appending); default 5.
   */
  maxPasses?: number;
  /** Called after each script call with the nodes it moved: progress, and proof of the chunking. */
  onStep?: (moved: number) => void;
}

/** What a migration did. */
export interface TreeMigrationResult {
  /** Nodes this call moved from the hash into segments (other processes may have moved more). */
  moved: number;
  /** The head is (now) format 3: the old hash is gone. False when the log is empty or absent. */
  done: boolean;
}

/** Moves every node of one level out of the hash; returns how many this call moved. */
async function migrateLevel(options: TreeMigrationOptions, level: number): Promise<number> {
  const { redis, prefix } = options;
  const keys = roundLogKeys(prefix);
  let moved = 0;
  for (let index = 0; ;) {
    const slot = nodeSlot(prefix, level, index);
    const first = index - (index % TREE_SEGMENT_NODES);
    const reply = (await runScript(
      redis,
      MIGRATE_STEP_SCRIPT,
      2,
      keys.oldTreeHash,
      slot.key,
      String(level),
      String(first),
      String(index),
      String(options.stepNodes ?? MIGRATION_STEP_NODES),
    )) as [number, number | string, number | string];
    const [status, next, detail] = reply;
    if (status === -1)
      throw new FlotillaError(
        'INTERNAL',
        `round-log tree migration stopped at node ${String(next)} of ${keys.oldTreeHash}: ${String(detail)}; the nodes not yet moved stay in the hash, where readers find them`,
      );
    moved += Number(detail);
    options.onStep?.(Number(detail));
    if (status === 0) return moved;
    index = Number(next);
  }
}

/** The error for nodes left in the hash that no pass can move. */
async function stuck(options: TreeMigrationOptions): Promise<FlotillaError> {
  const keys = roundLogKeys(options.prefix);
  const [, fields] = await options.redis.hscan(keys.oldTreeHash, '0', 'COUNT', 10);
  const sample = fields.filter((_, i) => i % 2 === 0).slice(0, 3);
  return new FlotillaError(
    'INTERNAL',
    `the round-log tree still has ${await options.redis.hlen(keys.oldTreeHash)} nodes in ${keys.oldTreeHash} that cannot be moved to segments (${sample.join(', ')}, …): a node before them at their level is in neither place, or a process of an older Flotilla version keeps appending to this log (docs/operations.md). Proofs still read them from the hash.`,
  );
}

/**
 * Moves a format-2 log's tree into segment strings and marks the head format 3. Safe with writers
 * appending and other processes migrating at the same time; a no-op on a format-3 or empty log.
 */
export async function migrateTreeToSegments(options: TreeMigrationOptions): Promise<TreeMigrationResult> {
  const { redis } = options;
  const keys = roundLogKeys(options.prefix);
  let moved = 0;
  let idlePasses = 0;
  for (let pass = 0; pass < (options.maxPasses ?? 5); pass++) {
    const state = parseLogState(await redis.get(keys.head), keys.head);
    if (state === null) return { moved, done: false };
    if (state.format === TREE_IN_SEGMENTS) return { moved, done: true };
    let movedThisPass = 0;
    if (pass > 0 || (await redis.exists(keys.oldTreeHash)) === 1) {
      // Levels 0..⌊log2 leaves⌋ hold nodes; a level first reached later starts in its segment.
      for (let level = 0; 2 ** level <= state.leaves; level++)
        movedThisPass += await migrateLevel(options, level);
    }
    moved += movedThisPass;
    const finished = await runScript(redis, FINISH_SCRIPT, 2, keys.head, keys.oldTreeHash);
    if (finished === 1) return { moved, done: true };
    // Nodes a format-2 writer added after this pass walked their level are moved by the next;
    // two passes in a row that move nothing mean nodes no pass can place.
    idlePasses = pass > 0 && movedThisPass === 0 ? idlePasses + 1 : 0;
    if (idlePasses === 2) break;
  }
  throw await stuck(options);
}

/** A writer's migration: started at most once at a time, retried after a failure at most once a minute. */
export interface BackgroundTreeMigration {
  /** Starts moving the tree unless a move is running (or failed less than a minute ago). */
  start(): void;
  /** Resolves once no move of this writer is running (a failure was reported, not thrown). */
  settled(): Promise<void>;
}

export function backgroundTreeMigration(
  options: Pick<TreeMigrationOptions, 'redis' | 'prefix'>,
  onError: (error: unknown) => void = (error) =>
    process.emitWarning(
      `round-log tree not moved to segments yet: ${error instanceof Error ? error.message : String(error)}`,
    ),
): BackgroundTreeMigration {
  let running: Promise<void> | null = null;
  let failedAt = Number.NEGATIVE_INFINITY;
  return {
    start() {
      if (running !== null || Date.now() - failedAt < 60_000) return;
      running = migrateTreeToSegments(options).then(
        () => undefined,
        (error: unknown) => {
          failedAt = Date.now();
          running = null;
          onError(error);
        },
      );
    },
    settled: async () => {
      await running;
    },
  };
}
