-- Reserve: check every monthly cap and both rate limits, then reserve in all of
-- them or in none. Now is Redis TIME plus time_offset_ms (never the replica's
-- clock, so caps and rate limits hold across replicas).
--
-- KEYS[1] RPM GCRA key, KEYS[2] TPM GCRA key, then for each candidate month m
-- (1..M) and cap c (1..C) two keys at 2 + ((m-1)*C + (c-1))*2 + {1,2}:
-- the cap hash (used, reserved) and the cap's reservation zset
-- ("<id>:<tokens>" -> expiry ms). The last key is the reservation's settled
-- marker: set when a reserve that timed out on the replica was released, so
-- the same script arriving late reserves nothing.
--
-- ARGV: 1 time_offset_ms (added to Redis TIME: Options.RedisTimeOffset, 0 in
-- production; see "Time" in doc.go), 2 id, 3 tokens, 4 rpm, 5 tpm, 6 ttl_ms,
-- 7 grace_ms, 8 M, 9 C, then M triples (month, start_ms, end_ms), then C limits,
-- then, for a lease (see "Leases" in doc.go; absent for one request): lease_div,
-- lease_min, requests. A lease reserves tokens = min(tokens, floor(min over
-- the caps of limit-used-reserved / lease_div)), or nothing when that is below
-- lease_min (reply 5), and takes `requests` requests from the RPM limit.
--
-- Returns one of
--   {0, month_index, remaining (-1: no cap), now_ms, left_1..left_C, tokens}
--                                                               admitted; left_c is
--                                                               cap c's remainder,
--                                                               tokens what was reserved
--   {1, cap_index, used, reserved, limit, month_index}          a cap is spent
--   {2, which (1 rpm, 2 tpm), retry_after_ms}                   rate limited
--   {3, now_ms}                                                 no candidate month holds now
--   {4}                                                         already released (nobody waits for it)
--   {5, left, month_index}                                      too little left for a lease
if redis.call('EXISTS', KEYS[#KEYS]) == 1 then
  return {4}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])

local id = ARGV[2]
local tokens = tonumber(ARGV[3])
local rpm = tonumber(ARGV[4])
local tpm = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local grace = tonumber(ARGV[7])
local M = tonumber(ARGV[8])
local C = tonumber(ARGV[9])

local m = 0
for i = 1, M do
  local b = 9 + (i - 1) * 3
  if now >= tonumber(ARGV[b + 2]) and now < tonumber(ARGV[b + 3]) then
    m = i
    break
  end
end
if m == 0 then
  return {3, now}
end
local month_end = tonumber(ARGV[9 + (m - 1) * 3 + 3])
local limits_at = 9 + M * 3
local lease_div = tonumber(ARGV[limits_at + C + 1] or '0')
local requests = tonumber(ARGV[limits_at + C + 2 + 1] or '1')

-- Caps first: purge reservations that expired (a crashed replica never settled
-- them), then read. A spent cap wins over a rate limit: it is not retryable.
local useds, reserveds = {}, {}
local fresh = {}
local least = nil
for c = 1, C do
  local k = 2 + ((m - 1) * C + (c - 1)) * 2
  local h, z = KEYS[k + 1], KEYS[k + 2]
  -- Members are "<id>:<tokens>", so purging needs no lookup per member.
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 256)
  if #expired > 0 then
    local freed = 0
    for _, member in ipairs(expired) do
      freed = freed + (tonumber(string.match(member, ':(%d+)$')) or 0)
    end
    redis.call('ZREM', z, unpack(expired))
    if freed > 0 then
      redis.call('HINCRBY', h, 'reserved', -freed)
    end
  end
  local v = redis.call('HMGET', h, 'used', 'reserved')
  if v[1] == false and v[2] == false then
    fresh[c] = true
  end
  useds[c] = tonumber(v[1]) or 0
  reserveds[c] = tonumber(v[2]) or 0
  local left = tonumber(ARGV[limits_at + c]) - useds[c] - reserveds[c]
  if least == nil or left < least then
    least = left
  end
end
if lease_div > 0 and least ~= nil then
  -- A lease takes at most its share of what is left, so the replicas'
  -- leases together leave room for each other and for the last requests.
  local share = math.floor(least / lease_div)
  if share < tokens then
    tokens = share
  end
  if tokens < tonumber(ARGV[limits_at + C + 2]) then
    return {5, least, m}
  end
end

local remaining = -1
local lefts = {}
for c = 1, C do
  local used, reserved = useds[c], reserveds[c]
  local limit = tonumber(ARGV[limits_at + c])
  if used + reserved + tokens > limit then
    return {1, c, used, reserved, limit, m}
  end
  local left = limit - used - reserved - tokens
  lefts[c] = left
  if remaining < 0 or left < remaining then
    remaining = left
  end
end

-- GCRA with a burst of one minute's worth. A cost above the whole burst is
-- checked as a full burst (so it can pass at all) but charged in full, which
-- keeps the long-run rate.
local function gcra(key, limit, cost)
  if limit <= 0 then
    return 0, nil
  end
  local interval = 60000 / limit
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then
    tat = now
  end
  local check = cost
  if check > limit then
    check = limit
  end
  local allow_at = tat + check * interval - 60000
  if allow_at > now then
    return math.ceil(allow_at - now), nil
  end
  return 0, tat + cost * interval
end

local rpm_wait, rpm_tat = gcra(KEYS[1], rpm, requests)
local tpm_wait, tpm_tat = gcra(KEYS[2], tpm, tokens)
if rpm_wait > 0 or tpm_wait > 0 then
  if rpm_wait >= tpm_wait then
    return {2, 1, rpm_wait}
  end
  return {2, 2, tpm_wait}
end

-- Everything passed: write.
if rpm_tat then
  redis.call('SET', KEYS[1], string.format('%.17g', rpm_tat), 'PX', math.max(1, math.ceil(rpm_tat - now)))
end
if tpm_tat then
  redis.call('SET', KEYS[2], string.format('%.17g', tpm_tat), 'PX', math.max(1, math.ceil(tpm_tat - now)))
end
local expire_at = month_end + grace
for c = 1, C do
  local k = 2 + ((m - 1) * C + (c - 1)) * 2
  local h, z = KEYS[k + 1], KEYS[k + 2]
  redis.call('HINCRBY', h, 'reserved', tokens)
  redis.call('ZADD', z, now + ttl, id .. ':' .. tokens)
  -- The hash keeps its fields (and so its expiry) once created; the zset is
  -- deleted by Redis whenever it empties, so it gets its expiry every time.
  if fresh[c] then
    redis.call('PEXPIREAT', h, expire_at)
  end
  redis.call('PEXPIREAT', z, expire_at)
end
local admitted = {0, m, remaining, now}
for c = 1, C do
  admitted[4 + c] = lefts[c]
end
admitted[5 + C] = tokens
return admitted
