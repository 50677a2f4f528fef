--[[
  Keeps the round-log leaf of the first refusal of a (device, reason) in a round, so that its
  repeats are answered with the same leaf; it expires with the round.

  KEYS[1]  round hash
  KEYS[2]  the round's refusal leaves hash ("<device pseudonym> <reason>" -> LogLeaf JSON)

  ARGV[1]  "<device pseudonym> <reason>"
  ARGV[2]  the leaf ({ record, leafHash }), JSON

  Returns:
    -1  GONE  the round does not exist (expired): nothing kept
     1  KEPT  kept
]]

if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
