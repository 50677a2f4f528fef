--[[
  Stores a selected device's skip (it will send no update) and counts it.

  KEYS[1]  round hash
  KEYS[2]  the round's accepted-updates hash
  KEYS[3]  the round's selected-devices set
  KEYS[4]  the round's skips hash (device id -> skip JSON)
  KEYS[5]  the round's final-refusals hash: a device counted there now counts as skipped instead

  ARGV[1]  device id
  ARGV[2]  the skip record, JSON

  Returns:
     1  OK                stored and counted
     2  ROUND_CLOSED      the round is not REPORTING
     3  NOT_SELECTED      the device was not selected for the round
     4  DUPLICATE_UPDATE  the device already answered (update or skip)
]]
--- @include "includes/takes-responses"

if not takesResponses(KEYS[1]) then return 2 end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then return 3 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 4 end
if redis.call('HSETNX', KEYS[4], ARGV[1], ARGV[2]) == 0 then return 4 end
redis.call('HINCRBY', KEYS[1], 'skippedCount', 1)
if redis.call('HDEL', KEYS[5], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'finalRefusedCount', -1) end
return 1
