--[[
  Creates a round (state SELECTING) and makes it its task's current round, once: a second opener
  (e.g. two notifications of one new task) changes nothing.

  KEYS[1]  round hash
  KEYS[2]  the task's current-round key
  KEYS[3]  (fenced store only) the round driver's lease key

  ARGV[1]  fencing token
  ARGV[2]  round id
  ARGV[3..] field, value pairs of the round record

  Returns:
    -1  FENCED   the fencing token is stale: nothing written
     0  EXISTS   the round already exists: nothing written
     1  CREATED
]]
--- @include "includes/fence-check"

if fenced(3) then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if #KEYS >= 3 then redis.call('HSET', KEYS[1], 'fence', ARGV[1]) end
redis.call('SET', KEYS[2], ARGV[2])
return 1
