-- Status: purge expired reservations of each cap (as reserve does), then read
-- used and reserved, so reports never count a reservation whose time is up.
-- Now is Redis TIME plus time_offset_ms.
--
-- KEYS: per cap c two keys at (c-1)*2 + {1,2}: the cap hash and its
-- reservation zset; all share one hash tag. ARGV: 1 time_offset_ms (added to
-- Redis TIME: Options.RedisTimeOffset, 0 in production; see "Time" in doc.go).
--
-- Returns {used_1, reserved_1, used_2, reserved_2, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local out = {}
for c = 1, #KEYS / 2 do
  local h, z = KEYS[(c - 1) * 2 + 1], KEYS[(c - 1) * 2 + 2]
  while true do
    local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 512)
    if #expired == 0 then
      break
    end
    local freed = 0
    for _, member in ipairs(expired) do
      freed = freed + (tonumber(string.match(member, ':(%d+)$')) or 0)
    end
    redis.call('ZREM', z, unpack(expired))
    if freed > 0 then
      redis.call('HINCRBY', h, 'reserved', -freed)
    end
    if #expired < 512 then
      break
    end
  end
  local v = redis.call('HMGET', h, 'used', 'reserved')
  out[#out + 1] = tonumber(v[1]) or 0
  out[#out + 1] = tonumber(v[2]) or 0
end
return out
