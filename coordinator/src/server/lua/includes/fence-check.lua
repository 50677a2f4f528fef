--[[
  fenced(lockIndex): true when this write must be refused because the writer's fencing token is
  stale (scale-out: the round driver's lease expired or was taken over).

  Convention of the scripts that include it: when the store is fenced, KEYS[lockIndex] (the last
  key) is the round driver's lease key and ARGV[1] the writer's fencing token. Without that key the
  store is not fenced and nothing is refused.
]]
local function fenced(lockIndex)
  if #KEYS < lockIndex then return false end
  return redis.call('GET', KEYS[lockIndex]) ~= ARGV[1]
end
