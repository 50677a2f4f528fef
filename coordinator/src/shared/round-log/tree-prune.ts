import type { Redis } from 'ioredis';
import { roundLogKeys } from './keys.js';
import { parseRawLine } from './mirror-read.js';
import { TREE_IN_SEGMENTS, parseLogState } from './tree-store.js';
import { PRUNE_BELOW_LEVEL, PRUNE_BLOCK_LEAVES, TREE_SEGMENT_NODES } from './tree-segments.js';
import { runScript } from '../redis-script.js';

// Once the stream is trimmed, its records live in every registered mirror file and under a signed
// tree head (trim.ts). Below that point the tree's levels under PRUNE_BELOW_LEVEL are dropped from
// Redis, whole segment strings at a time: a proof that needs one of those nodes recomputes its
// block of 1,024 records from the mirror and checks it against the kept level-10 node
// (tree-nodes.ts). The tree then grows in Redis by ~1/1,000 of a record's nodes per record.
// The last signed head's right edge is never pruned: every pruned block ends at or below the
// trimmed records, which are all below that head's size.

/** Blocks pruned per script call at most: ~70 segment keys, a short DEL. */
const PRUNE_STEP_BLOCKS = 64;

/**
 * KEYS: pruned-leaves key, segment keys to drop. ARGV: pruned leaves after the call, before it.
 * Moves the mark and drops the segments in one step, so a reader that sees a segment gone also
 * sees the mark that tells it where to look. Returns 1, or 0 when another process moved the mark.
 */
const PRUNE_SCRIPT = `
if tonumber(redis.call('GET', KEYS[1]) or '0') ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
return 1
`;

/** Segment keys of levels under PRUNE_BELOW_LEVEL lying wholly in leaves [0, to) but not [0, from). */
function segmentsBetween(prefix: string, from: number, to: number): string[] {
  const keys: string[] = [];
  for (let level = 0; level < PRUNE_BELOW_LEVEL; level++) {
    const leavesPerSegment = TREE_SEGMENT_NODES * 2 ** level;
    for (let s = Math.floor(from / leavesPerSegment); (s + 1) * leavesPerSegment <= to; s++)
      keys.push(roundLogKeys(prefix).treeSegment(level, s));
  }
  return keys;
}

/** Records the stream no longer holds: the first line left is that many records in. */
async function trimmedRecords(redis: Redis, prefix: string): Promise<number> {
  const [first] = await redis.xrange(roundLogKeys(prefix).stream, '-', '+', 'COUNT', 1);
  if (!first) return 0;
  const [id, fields] = first;
  const index = fields.indexOf('record');
  const line = parseRawLine({ seq: Number(id.slice(2)) - 1, line: fields[index + 1] ?? '' });
  return 'treeHead' in line ? line.treeHead.treeSize : line.leafIndex;
}

/**
 * Drops the tree's low levels under the records trimmed from the stream, in whole blocks of
 * 1,024 records. Resolves with the records now pruned. A log still migrating its tree out of the
 * old hash is left alone.
 */
export async function pruneTrimmedTree(redis: Redis, prefix: string): Promise<number> {
  const keys = roundLogKeys(prefix);
  const state = parseLogState(await redis.get(keys.head), keys.head);
  if (state === null || state.format !== TREE_IN_SEGMENTS) return 0;
  const target = Math.floor((await trimmedRecords(redis, prefix)) / PRUNE_BLOCK_LEAVES) * PRUNE_BLOCK_LEAVES;
  let pruned = Number((await redis.get(keys.prunedLeaves)) ?? 0);
  while (pruned < target) {
    const next = Math.min(target, pruned + PRUNE_STEP_BLOCKS * PRUNE_BLOCK_LEAVES);
    const dropped = segmentsBetween(prefix, pruned, next);
    const moved = await runScript(
      redis,
      PRUNE_SCRIPT,
      1 + dropped.length,
      keys.prunedLeaves,
      ...dropped,
      String(next),
      String(pruned),
    );
    // Another process pruned meanwhile: carry on from where it got to.
    pruned = moved === 1 ? next : Number((await redis.get(keys.prunedLeaves)) ?? 0);
  }
  return pruned;
}
