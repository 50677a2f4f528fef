// The round log's append, one Lua script run by every writer (writer.ts).

/**
 * Compare-and-append, atomically in Redis: only if the head is still the one the lines were built
 * on (optimistic concurrency between the server and the worker, on any shared connection), add
 * the stream entries (a record, and the tree head that covers it when one is signed), store the
 * tree nodes the record completes, move the head, count the record in its round's hash and pin
 * retained delta digests. The stream writes come first, so a failed XADD leaves the head
 * untouched. An `update.accepted` the round's hash already holds is not appended again:
 * `{2, seq}` names it.
 *
 * KEYS: head, stream, retained, round hash, tree. ARGV: expected head, next head, count field
 * ('' | accepted | refused), once field ('' | acc:<pseudonym>), record seq, round hash TTL (ms),
 * count increment, retained until, line count L, L × (stream id, line JSON), node count N,
 * N × (field, hash bytes), retained digests...
 */
export const APPEND_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if (current or '') ~= ARGV[1] then return {0} end
if ARGV[4] ~= '' then
  local existing = redis.call('HGET', KEYS[4], ARGV[4])
  if existing then return {2, tonumber(existing)} end
end
local i = 10
for _ = 1, tonumber(ARGV[9]) do
  redis.call('XADD', KEYS[2], ARGV[i], 'record', ARGV[i + 1])
  i = i + 2
end
local nodes = tonumber(ARGV[i])
i = i + 1
for _ = 1, nodes do
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HINCRBY', KEYS[4], ARGV[3], tonumber(ARGV[7]))
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[4], ARGV[5]) end
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
end
for j = i, #ARGV do redis.call('ZADD', KEYS[3], 'GT', ARGV[8], ARGV[j]) end
return {1}
`;
