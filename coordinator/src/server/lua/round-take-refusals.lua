--[[
  Takes a round's pending refusal counts (to be written to the round log) and reads, in the same
  step, its refusal total and accepted count, which `round.closed` / `round.abandoned` report.

  KEYS[1]  the round's pending hash ("<device pseudonym> <reason>" -> count)
  KEYS[2]  the set of rounds with pending counts
  KEYS[3]  round hash

  ARGV[1]  round id

  Returns {refusedCount, {field, count, field, count, ...}, acceptedCount}; no result codes.
]]

local counts = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
local totals = redis.call('HMGET', KEYS[3], 'refusedCount', 'acceptedCount')
return { totals[1] or '0', counts, totals[2] or '0' }
