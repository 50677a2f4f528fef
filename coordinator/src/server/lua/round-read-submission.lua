--[[
  Reads, in one call, everything the checks of an `update:submit` look at (accept-update.ts runs
  them in their order on this answer; round-accept-update.lua checks again, atomically, what may
  change before the update is stored). Writes nothing.

  KEYS[1]  the task's current-round key
  KEYS[2]  the claimed round's accepted-updates hash
  KEYS[3]  the claimed round's selected-devices set
  KEYS[4]  the claimed round's skips hash
  KEYS[5]  the device record
  KEYS[6]  the task record (signed task JSON)
  KEYS[7]  the uploaders set of the submitted blob

  ARGV[1]  device id
  ARGV[2]  '1' when the claimed round id names a round of the task (its stored update is read)
  ARGV[3], ARGV[4]  round hash key: before and after the round id

  Returns {current round id or false, the current round's fields and values (HGETALL), the
  device's stored update in the claimed round or false, selected 0|1, device record or false,
  answered (update or skip) 0|1, task record or false, uploader 0|1}
]]

local currentId = redis.call('GET', KEYS[1])
local round = {}
if currentId then round = redis.call('HGETALL', ARGV[3] .. currentId .. ARGV[4]) end
local stored = false
if ARGV[2] == '1' then stored = redis.call('HGET', KEYS[2], ARGV[1]) end
local answered = 0
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 or redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then
  answered = 1
end
return {
  currentId,
  round,
  stored,
  redis.call('SISMEMBER', KEYS[3], ARGV[1]),
  redis.call('GET', KEYS[5]),
  answered,
  redis.call('GET', KEYS[6]),
  redis.call('SISMEMBER', KEYS[7], ARGV[1]),
}
