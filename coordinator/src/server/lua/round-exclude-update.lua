--[[
  Takes a revoked device's accepted update out of a round that still takes responses: once the
  round closed, its accepted count and aggregation job are final.

  KEYS[1]  round hash
  KEYS[2]  the round's accepted-updates hash
  KEYS[3]  the round's excluded-updates hash (device id -> exclusion JSON)

  ARGV[1]  device id
  ARGV[2]  the exclusion record, JSON

  Returns:
     0  KEPT      the round is not REPORTING, or holds no update of the device: nothing written
     1  EXCLUDED  the update was taken out and the exclusion stored
]]
--- @include "includes/takes-responses"

if not takesResponses(KEYS[1]) then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'acceptedCount', -1)
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return 1
