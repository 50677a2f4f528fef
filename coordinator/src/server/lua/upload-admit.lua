--[[
  Admits a device's upload in one step, before its body is read: the session token names an
  active device; among the rounds that selected it, in REPORTING and before their deadline, the
  one allowing the largest upload (the first of equals, in the tasks' order) is charged; the
  digest is reserved in the device's quota set of that round. A retry of a reserved digest is
  admitted again without a second place.

  Keys the script builds (the current round of each task, rounds, selections, quota sets) are
  given as the text around their ids, made by keys.ts (upload-admission.ts), so both sides name
  the same keys.

  KEYS[1]  the session key (device id under the token's hash)
  KEYS[2]  the tasks sorted set

  ARGV[1]  digest
  ARGV[2]  distinct blobs a device may store per round
  ARGV[3]  now, epoch ms
  ARGV[4]  how long a quota set outlives its round's deadline, ms
  ARGV[5], ARGV[6]    device record key: before and after the device id
  ARGV[7], ARGV[8]    a task's current-round key: before and after the task id
  ARGV[9], ARGV[10]   round hash key: before and after the round id
  ARGV[11], ARGV[12]  the round's selected set: before and after the round id
  ARGV[13], ARGV[14], ARGV[15]  quota set: before the round id, between it and the device id, after

  Returns {code, device id, round id, largest upload in bytes}:
     1  RESERVED        newly reserved
     2  RETRY           the digest was already reserved in this round (a retry of the upload)
     3  UNAUTHORIZED    no live session, or its device is not active
     4  NOT_SELECTED    no round in REPORTING before its deadline selected the device
     5  QUOTA_EXCEEDED  the device's quota of this round is used up
]]
--- @include "includes/device-active"
--- @include "includes/takes-responses"

local deviceId = redis.call('GET', KEYS[1])
if not deviceId or not deviceActive(ARGV[5] .. deviceId .. ARGV[6]) then return {3, '', '', 0} end

local now = tonumber(ARGV[3])
local chosen, chosenMax, chosenDeadline
for _, taskId in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local roundId = redis.call('GET', ARGV[7] .. taskId .. ARGV[8])
  if roundId then
    local roundKey = ARGV[9] .. roundId .. ARGV[10]
    local planJson = takesResponses(roundKey) and redis.call('HGET', roundKey, 'plan')
    if planJson and redis.call('SISMEMBER', ARGV[11] .. roundId .. ARGV[12], deviceId) == 1 then
      local plan = cjson.decode(planJson)
      local max = tonumber(plan.budget.maxUploadBytes)
      if now <= tonumber(plan.deadline) and (not chosen or max > chosenMax) then
        chosen, chosenMax, chosenDeadline = roundId, max, tonumber(plan.deadline)
      end
    end
  end
end
if not chosen then return {4, deviceId, '', 0} end

local quota = ARGV[13] .. chosen .. ARGV[14] .. deviceId .. ARGV[15]
if redis.call('SISMEMBER', quota, ARGV[1]) == 1 then return {2, deviceId, chosen, chosenMax} end
if redis.call('SCARD', quota) >= tonumber(ARGV[2]) then return {5, deviceId, chosen, chosenMax} end
redis.call('SADD', quota, ARGV[1])
redis.call('PEXPIREAT', quota, string.format('%d', chosenDeadline + tonumber(ARGV[4])))
return {1, deviceId, chosen, chosenMax}
