import type { Redis } from 'ioredis';
import { FlotillaError, MERKLE_HASH_BYTES, type MerkleNodeId } from '@flotilla/protocol';
import { roundLogKeys } from './keys.js';
import { runScriptBuffer } from '../redis-script.js';

// The Merkle tree's complete subtrees in Redis, 32 bytes each, packed into strings: one string per
// level and block of TREE_SEGMENT_NODES indexes. A hash field per node (format 2) cost ~190 B per
// record; packed, a record costs its ~2 nodes' 64 B. Small fixed-size segments bound what Redis
// over-allocates while a string grows (up to twice its length), and let a whole block be dropped.
// Nodes are appended in index order, so a segment is always a prefix of its block: a string
// shorter than a node's offset means the node is elsewhere (the old hash, mid-migration) or lost.

/**
 * Nodes per segment string: 1023 × 32 B = 32,736 B, which with Redis's string header fits the
 * allocator's 32 KiB size class exactly once the full segment is rewritten at its own size
 * (`COMPACT_FULL_SEGMENT`); 1024 would take the next class, 40 KiB. Every process must agree on it.
 */
export const TREE_SEGMENT_NODES = 1023;

/** Bytes of a full segment. */
export const TREE_SEGMENT_BYTES = TREE_SEGMENT_NODES * MERKLE_HASH_BYTES;

/**
 * Lua, after a node was written at byte `offset` of segment `key`: once the segment is full, it is
 * rewritten as a new string of exactly its length, dropping the room Redis reserved for growth
 * (about a third of the memory otherwise, measured by scripts/round-log-memory.mjs).
 */
export const COMPACT_FULL_SEGMENT = (key: string, offset: string) => `
if ${offset} + ${MERKLE_HASH_BYTES} == ${TREE_SEGMENT_BYTES} then
  redis.call('SET', ${key}, redis.call('GET', ${key}))
end`;

/** Where one node lives: its segment key, byte offset in it, and its old hash field. */
export interface NodeSlot {
  key: string;
  offset: number;
  /** Field of the format-2 hash (`<level>:<index>`). */
  field: string;
}

export function nodeSlot(prefix: string, level: number, index: number): NodeSlot {
  const segment = Math.floor(index / TREE_SEGMENT_NODES);
  return {
    key: roundLogKeys(prefix).treeSegment(level, segment),
    offset: MERKLE_HASH_BYTES * (index - segment * TREE_SEGMENT_NODES),
    field: `${level}:${index}`,
  };
}

/**
 * Reads nodes, each from its segment when the segment reaches it, else from the old hash (a log
 * still migrating). One script, so a migration step cannot move a node between the two reads.
 * KEYS: old hash, pruned-leaves key, segment keys. ARGV: per node (segment key number, byte
 * offset, hash field). Returns per node its 32 bytes, or, when neither holds it (or the segment
 * is not whole nodes), the segment's length in bytes; then the pruned-leaves count.
 */
const READ_NODES_SCRIPT = `
local lengths, out = {}, {}
for n = 1, #ARGV / 3 do
  local k, offset, field = tonumber(ARGV[3 * n - 2]), tonumber(ARGV[3 * n - 1]), ARGV[3 * n]
  local key = KEYS[k + 2]
  local length = lengths[k]
  if not length then
    length = redis.call('STRLEN', key)
    lengths[k] = length
  end
  if length % ${MERKLE_HASH_BYTES} ~= 0 then
    out[n] = length
  elseif offset + ${MERKLE_HASH_BYTES} <= length then
    out[n] = redis.call('GETRANGE', key, offset, offset + ${MERKLE_HASH_BYTES - 1})
  else
    out[n] = redis.call('HGET', KEYS[1], field) or length
  end
end
out[#out + 1] = tonumber(redis.call('GET', KEYS[2]) or '0')
return out
`;

/** Tree levels below this one are dropped from Redis for records the stream no longer holds. */
export const PRUNE_BELOW_LEVEL = 10;
/** Records under one kept node of level `PRUNE_BELOW_LEVEL`: the unit that is pruned and recomputed. */
export const PRUNE_BLOCK_LEAVES = 2 ** PRUNE_BELOW_LEVEL;

/** Whether node (level, index) lies in the pruned span: dropped from Redis, recomputed from a mirror. */
export const isPruned = (id: MerkleNodeId, prunedLeaves: number): boolean =>
  id.level < PRUNE_BELOW_LEVEL && (id.index + 1) * 2 ** id.level <= prunedLeaves;

/** The error for a node Redis should hold but does not (the tree was cut short or overwritten). */
export function treeNodeMissing(slot: NodeSlot, id: MerkleNodeId, length: number): FlotillaError {
  const what =
    length % MERKLE_HASH_BYTES !== 0
      ? `holds ${length} bytes, not a whole number of ${MERKLE_HASH_BYTES}-byte nodes: it is corrupt`
      : `holds ${length / MERKLE_HASH_BYTES} nodes, so not node ${id.level}:${id.index} at byte ${slot.offset}: the tree in Redis was cut short`;
  return new FlotillaError('INTERNAL', `round-log tree segment ${slot.key} ${what}`, {
    details: { key: slot.key, level: id.level, index: id.index, length },
  });
}

/**
 * Stored nodes by id, in one round trip: null for a node of the pruned span (its segment was
 * dropped; tree-nodes.ts recomputes it). Throws INTERNAL naming the key of any other node not held.
 */
export async function readStoredNodes(
  redis: Redis,
  prefix: string,
  ids: readonly MerkleNodeId[],
): Promise<Array<Uint8Array | null>> {
  if (ids.length === 0) return [];
  const keys = roundLogKeys(prefix);
  const reads = ids.map((id) => ({ id, slot: nodeSlot(prefix, id.level, id.index) }));
  const keyNumbers = new Map<string, number>();
  for (const { slot } of reads) if (!keyNumbers.has(slot.key)) keyNumbers.set(slot.key, keyNumbers.size + 1);
  const values = (await runScriptBuffer(
    redis,
    READ_NODES_SCRIPT,
    2 + keyNumbers.size,
    keys.oldTreeHash,
    keys.prunedLeaves,
    ...keyNumbers.keys(),
    ...reads.flatMap(({ slot }) => [keyNumbers.get(slot.key) ?? 0, slot.offset, slot.field]),
  )) as Array<Buffer | number>;
  const prunedLeaves = Number(values.at(-1) ?? 0);
  return reads.map(({ id, slot }, i) => {
    const value = values[i];
    if (value === 0 && isPruned(id, prunedLeaves)) return null;
    if (typeof value === 'number' || value === undefined) throw treeNodeMissing(slot, id, value ?? 0);
    if (value.length !== MERKLE_HASH_BYTES)
      throw new FlotillaError(
        'INTERNAL',
        `round-log tree node ${slot.field} in ${keys.oldTreeHash} holds ${value.length} bytes, not ${MERKLE_HASH_BYTES}`,
      );
    return new Uint8Array(value);
  });
}
