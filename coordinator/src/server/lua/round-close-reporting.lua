--[[
  REPORTING -> AGGREGATING, only with quorum, in one step with the accepted count it closes with:
  exclusions (revocation) change acceptedCount only while the round takes responses, so the count
  returned is final.

  KEYS[1]  round hash
  KEYS[2]  (fenced store only) the round driver's lease key

  ARGV[1]  fencing token
  ARGV[2]  closedAt, epoch ms

  Returns {code, accepted count}:
    -1  FENCED   the fencing token is stale: nothing written
     0  STATE    the round is not in REPORTING: nothing written
     1  OK       closed for aggregation
     2  QUORUM   fewer than minReports accepted: still REPORTING, to be abandoned
]]
--- @include "includes/fence-check"
--- @include "includes/takes-responses"

if fenced(2) then return {-1, 0} end
if not takesResponses(KEYS[1]) then return {0, 0} end
local accepted = tonumber(redis.call('HGET', KEYS[1], 'acceptedCount') or '0')
if accepted < tonumber(redis.call('HGET', KEYS[1], 'minReports')) then return {2, accepted} end
redis.call('HSET', KEYS[1], 'state', 'AGGREGATING', 'closedAt', ARGV[2])
if #KEYS >= 2 then redis.call('HSET', KEYS[1], 'fence', ARGV[1]) end
return {1, accepted}
