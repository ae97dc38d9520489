-- Refresh: extend the expiry of reservations whose calls are still running.
-- Now is Redis TIME plus time_offset_ms.
--
-- KEYS[i] a reservation zset; ARGV: 1 time_offset_ms (added to Redis TIME:
-- Options.RedisTimeOffset, 0 in production; see "Time" in doc.go), 2 ttl_ms,
-- then ARGV[2 + i] the member ("<id>:<tokens>") to extend in KEYS[i]. All keys
-- share one hash tag.
--
-- Only a member still present is touched: a reservation already settled,
-- released or purged is never brought back. A score is only ever raised.
--
-- Returns one flag per key: 1 extended (or already later), 0 gone.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local expire = now + tonumber(ARGV[2])
local out = {}
for i, z in ipairs(KEYS) do
  local m = ARGV[2 + i]
  local score = redis.call('ZSCORE', z, m)
  if score then
    if tonumber(score) < expire then
      redis.call('ZADD', z, 'XX', expire, m)
    end
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
