--[[
  Records the devices selected for a round (in CONFIGURING, before its plan is stored).

  KEYS[1]  the round's selected-devices set
  KEYS[2]  (fenced store only) the round driver's lease key

  ARGV[1]  fencing token
  ARGV[2..] the selected device ids

  Returns:
    -1  FENCED   the fencing token is stale: nothing written
     1  STORED
]]
--- @include "includes/fence-check"

if fenced(2) then return -1 end
for i = 2, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end
return 1
