// The round log's append, one Lua script run by every writer (writer.ts).
import type { Redis } from 'ioredis';
import type { RoundLogEvent } from '@flotilla/protocol';
import { runScript } from '../redis-script.js';
import type { AppendLines } from './append-lines.js';
import { roundLogKeys, streamIdOf } from './keys.js';
import { COMPACT_FULL_SEGMENT, nodeSlot } from './tree-segments.js';

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

/**
 * How long a round's counts stay in Redis after its last counted record: 30 days (its closer
 * reads them when reporting ends, normally minutes later).
 */
const ROUND_COUNTS_TTL_MS = 30 * 24 * 60 * 60 * 1000;

/** How an event counts in its round's hash: [count field, increment, once field]. */
function countFields(event: RoundLogEvent): [string, number, string] {
  if (event.type === 'update.accepted') return ['accepted', 1, `acc:${event.device}`];
  if (event.type === 'update.refused') return ['refused', 1, ''];
  // An accepted update taken out before the round's end (a revoked device) no longer counts.
  if (event.type === 'update.excluded') return ['accepted', -1, ''];
  // Repeated refusals counted rather than logged one by one add to the same total.
  if (event.type === 'update.refusals')
    return ['refused', event.counts.reduce((sum, c) => sum + c.count, 0), ''];
  return ['', 0, ''];
}

/**
 * Runs the append of `built`, made on `heads.raw` (the head's text as read) and moving it to
 * `heads.next` (`built.state` as JSON), and returns the script's reply.
 */
export async function runAppendScript(
  redis: Redis,
  prefix: string,
  heads: { raw: string | null; next: string },
  event: RoundLogEvent,
  built: AppendLines,
): Promise<[number, (number | string)?, number?, number?]> {
  const keys = roundLogKeys(prefix);
  const [retainedUntil, retainedDigests] =
    event.type === 'aggregation' && event.deltasRetainedUntil !== null
      ? [String(event.deltasRetainedUntil), event.participants.map((p) => p.blobDigest)]
      : ['0', []];
  const [countField, increment, onceField] = countFields(event);
  const roundKey = keys.round('roundId' in event ? event.roundId : '-');
  const slots = built.nodes.map((node) => nodeSlot(prefix, node.level, node.index));
  return (await runScript(
    redis,
    APPEND_SCRIPT,
    5 + slots.length,
    keys.head,
    keys.stream,
    keys.retained,
    roundKey,
    keys.oldTreeHash,
    ...slots.map((slot) => slot.key),
    heads.raw ?? '',
    heads.next,
    countField,
    onceField,
    String(built.record.seq),
    String(ROUND_COUNTS_TTL_MS),
    String(increment),
    retainedUntil,
    String(built.lines.length),
    ...built.lines.flatMap((line) => [streamIdOf(line.seq), JSON.stringify(line)]),
    String(built.nodes.length),
    ...built.nodes.flatMap((node, i) => {
      const slot = slots[i];
      return slot ? [String(slot.offset), slot.field, Buffer.from(node.hash)] : [];
    }),
    ...retainedDigests,
  )) as [number, (number | string)?, number?, number?];
}
