--[[
  Moves a round from one of the given states to another, setting extra fields: a plain move of
  ROUND_TRANSITIONS (round-machine.ts), against which the TypeScript side checks the states. With
  the same state at both ends it only sets the fields, if the round is still in that state
  (RoundStore.extendSelection).

  KEYS[1]  round hash
  KEYS[2]  (fenced store only) the round driver's lease key

  ARGV[1]  fencing token
  ARGV[2]  the states the round may be in, comma separated
  ARGV[3]  the new state
  ARGV[4..] field, value pairs to set with it

  Returns:
    -1  FENCED       the fencing token is stale: nothing written
     0  WRONG_STATE  the round is in none of ARGV[2]: nothing written
     1  MOVED
]]
--- @include "includes/fence-check"

if fenced(2) then return -1 end
local st = redis.call('HGET', KEYS[1], 'state')
local ok = false
for s in string.gmatch(ARGV[2], '[^,]+') do if s == st then ok = true end end
if not ok then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if #KEYS >= 2 then redis.call('HSET', KEYS[1], 'fence', ARGV[1]) end
return 1
