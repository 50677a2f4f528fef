--[[
  Stores an accepted update and counts it, in one atomic step; the device's ack is sent only after
  this returns. Reaching the round's goal sets its early close: min(deadline, now + acceptWindowMs).

  KEYS[1]  round hash
  KEYS[2]  the round's accepted-updates hash (device id -> record JSON)
  KEYS[3]  the round's selected-devices set
  KEYS[4]  the round's skips hash
  KEYS[5]  the round's final-refusals hash: a device counted there now counts as accepted instead
  KEYS[6]  the device record: it must still be active (a revocation precedes or excludes it)

  ARGV[1]  device id
  ARGV[2]  the accepted-update record, JSON
  ARGV[3]  now, epoch ms

  Returns {code, accepted count (0 unless OK)}:
     1  OK                stored and counted
     2  ROUND_CLOSED      not REPORTING, or past the deadline or the early close
     3  NOT_SELECTED      the device was not selected for the round
     4  DUPLICATE_UPDATE  the device already answered (update or skip)
     5  REVOKED_DEVICE    the device's enrollment was revoked
]]
--- @include "includes/device-active"
--- @include "includes/takes-responses"

if not deviceActive(KEYS[6]) then return {5, 0} end
if not takesResponses(KEYS[1]) then return {2, 0} end
local now = tonumber(ARGV[3])
local deadline = tonumber(redis.call('HGET', KEYS[1], 'deadline'))
local closeAt = redis.call('HGET', KEYS[1], 'closeAt')
if now > deadline or (closeAt and now > tonumber(closeAt)) then return {2, 0} end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then return {3, 0} end
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then return {4, 0} end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return {4, 0} end
local count = redis.call('HINCRBY', KEYS[1], 'acceptedCount', 1)
if redis.call('HDEL', KEYS[5], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'finalRefusedCount', -1) end
local goal = tonumber(redis.call('HGET', KEYS[1], 'goalCount'))
if count >= goal and not closeAt then
  local c = math.min(deadline, now + tonumber(redis.call('HGET', KEYS[1], 'acceptWindowMs')))
  redis.call('HSET', KEYS[1], 'closeAt', tostring(c))
end
return {1, count}
