--[[
  deviceActive(key): true when the device record stored under `key` is enrolled and not revoked.
  Scripts that must not act for a revoked device (accepting an update, opening a session) include
  it, so the check and their write are one atomic step against a concurrent revocation.
]]
local function deviceActive(key)
  local raw = redis.call('GET', key)
  if not raw then return false end
  local ok, record = pcall(cjson.decode, raw)
  return ok and type(record) == 'table' and record.status == 'active'
end
