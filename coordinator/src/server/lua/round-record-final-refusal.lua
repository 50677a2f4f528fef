--[[
  Counts a selected device as answered after a final refusal of its update (protocol's
  FINAL_UPDATE_REFUSALS): the round need not wait for it. A device with an accepted update or a
  skip already answered; a later acceptance or skip of this device replaces this count.

  KEYS[1]  round hash (its finalRefusedCount)
  KEYS[2]  the round's accepted-updates hash
  KEYS[3]  the round's selected-devices set
  KEYS[4]  the round's skips hash
  KEYS[5]  the round's final-refusals hash (device id -> refusal code)

  ARGV[1]  device id
  ARGV[2]  the refusal's code
  ARGV[3]  now, epoch ms

  Returns:
     1  COUNTED       stored and counted
     2  ROUND_CLOSED  not REPORTING, or past the deadline or the early close: nothing counted
     3  NOT_SELECTED  the device was not selected for the round
     4  ANSWERED      the device already answered (update, skip or a final refusal)
]]
--- @include "includes/takes-responses"

if not takesResponses(KEYS[1]) then return 2 end
local now = tonumber(ARGV[3])
local deadline = tonumber(redis.call('HGET', KEYS[1], 'deadline'))
local closeAt = redis.call('HGET', KEYS[1], 'closeAt')
if now > deadline or (closeAt and now > tonumber(closeAt)) then return 2 end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then return 3 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 4 end
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then return 4 end
if redis.call('HSETNX', KEYS[5], ARGV[1], ARGV[2]) == 0 then return 4 end
redis.call('HINCRBY', KEYS[1], 'finalRefusedCount', 1)
return 1
