// The round log's append, one Lua script run by every writer (writer.ts).
import { COMPACT_FULL_SEGMENT } from './tree-segments.js';

/** The append script's first reply element: what happened. */
export const APPEND_RESULT = {
  /** The head moved since the lines were built: rebuild and retry. */
  stale: 0,
  appended: 1,
  /** The round already holds this device's `update.accepted`; its seq follows. */
  duplicate: 2,
  /** A tree segment does not end where the new node goes; its key, length and the offset follow. */
  corruptSegment: 3,
} as const;

/**
 * Compare-and-append, atomically in Redis: only if the head is still the one the lines were built
 * on (optimistic concurrency between the server and the worker, on any shared connection), add
 * the stream entries (a record, and the tree head that covers it when one is signed), store the
 * tree nodes the record completes, move the head, count the record in its round's hash and pin
 * retained delta digests. An `update.accepted` the round's hash already holds is not appended
 * again: `{2, seq}` names it.
 *
 * Each node goes at the end of its segment string (tree-segments.ts). A segment that ends before
 * the node's offset while the old tree hash still exists is mid-migration (tree-migration.ts):
 * the node goes into the hash, where readers and the migration find it. Any other length is a
 * damaged tree: `{3, key, length, offset}`, checked before anything is written.
 *
 * KEYS: head, stream, retained, round hash, old tree hash, one segment key per node.
 * ARGV: expected head, next head, count field ('' | accepted | refused), once field ('' |
 * acc:<pseudonym>), record seq, round hash TTL (ms), count increment, retained until, line count
 * L, L × (stream id, line JSON), node count N, N × (byte offset, old hash field, hash bytes),
 * retained digests...
 */
export const APPEND_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if (current or '') ~= ARGV[1] then return {0} end
if ARGV[4] ~= '' then
  local existing = redis.call('HGET', KEYS[4], ARGV[4])
  if existing then return {2, tonumber(existing)} end
end
local lines = tonumber(ARGV[9])
local first = 11 + 2 * lines
local nodes = tonumber(ARGV[first - 1])
local migrating = redis.call('EXISTS', KEYS[5]) == 1
local inSegment = {}
for n = 1, nodes do
  local key, offset = KEYS[5 + n], tonumber(ARGV[first + 3 * (n - 1)])
  local length = redis.call('STRLEN', key)
  inSegment[n] = length == offset
  if not inSegment[n] and not (migrating and length < offset) then return {3, key, length, offset} end
end
local i = 10
for _ = 1, lines do
  redis.call('XADD', KEYS[2], ARGV[i], 'record', ARGV[i + 1])
  i = i + 2
end
for n = 1, nodes do
  local at = first + 3 * (n - 1)
  if inSegment[n] then
    redis.call('SETRANGE', KEYS[5 + n], ARGV[at], ARGV[at + 2])
    ${COMPACT_FULL_SEGMENT('KEYS[5 + n]', 'tonumber(ARGV[at])')}
  else
    redis.call('HSET', KEYS[5], ARGV[at + 1], ARGV[at + 2])
  end
end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HINCRBY', KEYS[4], ARGV[3], tonumber(ARGV[7]))
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[4], ARGV[5]) end
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
end
for j = first + 3 * nodes, #ARGV do redis.call('ZADD', KEYS[3], 'GT', ARGV[8], ARGV[j]) end
return {1}
`;
