--[[
  takesResponses(roundKey): true when the round stored under `roundKey` takes updates and skips,
  i.e. is in RESPONDING_STATE of round-machine.ts ('REPORTING'). The scripts that store, exclude
  or close on responses check it here, atomically with their write.
]]
local function takesResponses(roundKey)
  return redis.call('HGET', roundKey, 'state') == 'REPORTING'
end
