--[[
  Counts one refused update of a round: in the round's total, and per (device, reason). The first
  refusal of a (device, reason) is to be logged in full; a repeat is only counted, in the pending
  counts that refusal-log.ts writes as an `update.refusals` record later.

  KEYS[1]  round hash (its refusedCount)
  KEYS[2]  the round's refusals hash ("<device pseudonym> <reason>" -> count)
  KEYS[3]  the round's pending hash (counts not yet in the round log)
  KEYS[4]  the set of rounds with pending counts

  ARGV[1]  "<device pseudonym> <reason>"
  ARGV[2]  round id

  Returns:
    -1  GONE    the round does not exist (expired): nothing counted
     0  REPEAT  counted; a refusal like it is already logged
     1  FIRST   counted; the first of its (device, reason): log it
]]

if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HINCRBY', KEYS[1], 'refusedCount', 1)
local n = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
-- The counts expire with the round.
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
if n == 1 then return 1 end
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
if ttl > 0 then redis.call('PEXPIRE', KEYS[3], ttl) end
redis.call('SADD', KEYS[4], ARGV[2])
return 0
