-- Settle or release one reservation, exactly once per reservation ID; or
-- release an orphan: a reservation whose reserve timed out on the replica.
--
-- KEYS[1] settled marker, KEYS[2] ledger hash, KEYS[3] alerts hash,
-- KEYS[4] TPM GCRA key, then per cap c two keys at 4 + (c-1)*2 + {1,2}: the cap
-- hash and its reservation zset, then the candidate per-day ledger hashes.
--
-- ARGV: 1 time_offset_ms (added to Redis TIME, which dates the per-minute
-- true-up: Options.RedisTimeOffset, 0 in production; see "Time" in doc.go),
-- 2 id, 3 kind ('s' settle, 'r' release, 'o' orphan; a settle may be followed
-- by 'e': usage estimated, and 'x': the call failed mid-stream; both are
-- counted in the ledger),
-- 4 counted (also added to the ledger's 'counted'), 5 ledger field prefix
-- "<account>[@<team>]|<model>|[<tier>:]", 6 input, 7 output,
-- 8 cache_read, 9 cache_write, 10 ledger expire-at ms, 11 cap expire-at ms,
-- 12 marker ttl ms, 13 tpm (0: no true-up), 14 reserved tokens, 15 C,
-- 16 held ('1': a reservation was made in Redis), then per cap:
-- limit, alert label, n, n thresholds; then the candidate days of the
-- per-day ledger: D, then D start times in ms (their hashes are the D keys
-- after the caps'; D 0: no per-day ledger); then, for kind 'l' only, five
-- more: next id, tokens kept, requests, errors, estimated; and, when a
-- returned lease gives back request slots it never used, two more: rpm and
-- the slots, with the RPM GCRA key as the last key.
--
-- Kind 'l' settles a batch of calls admitted against a lease (see "Leases"
-- in doc.go), one ledger line of them: id is the lease's current generation
-- "<lease>.<n>" and reserved tokens what it holds in Redis; its usage is
-- charged as a settlement's, the ledger counts the given requests, errors
-- and estimated calls, and the lease is kept as generation "next id" with
-- the given tokens (0: returned). A generation is settled once, so a retried
-- batch changes nothing.
--
-- Returns {0} when this ID was settled or released before, otherwise
-- {1, cap_index, threshold, used, ...} listing threshold crossings claimed now,
-- with 2 instead of 1 when a held reservation was no longer there (it expired
-- and was purged before its call settled). An orphan release returns {1} when
-- it found and removed the reservation, {0} otherwise.
local id = ARGV[2]
local kind = string.sub(ARGV[3], 1, 1)
local estimated = kind == 's' and string.find(ARGV[3], 'e', 2, true) ~= nil
local failed = kind == 's' and string.find(ARGV[3], 'x', 2, true) ~= nil
local C = tonumber(ARGV[15])
local reserved_tokens = tonumber(ARGV[14])
local member = id .. ':' .. ARGV[14]

-- What a ledger line counts: one call, or for a lease batch the given numbers.
local lease_next, lease_keep = nil, 0
local slots_rpm, slots_back = 0, 0
local nreq, nerr, nest = 1, 0, 0
if kind == 'l' then
  local q = 17
  for _ = 1, C do
    q = q + 3 + tonumber(ARGV[q + 2])
  end
  q = q + 1 + (tonumber(ARGV[q]) or 0) -- past the per-day ledger's candidate days
  lease_next, lease_keep = ARGV[q], tonumber(ARGV[q + 1])
  nreq, nerr, nest = tonumber(ARGV[q + 2]), tonumber(ARGV[q + 3]), tonumber(ARGV[q + 4])
  slots_rpm, slots_back = tonumber(ARGV[q + 5]) or 0, tonumber(ARGV[q + 6]) or 0
else
  if estimated then
    nest = 1
  end
  if failed then
    nerr = 1
  end
end

-- Give back to the per-minute tokens what the estimate took beyond the usage,
-- or charge what the usage took beyond the estimate.
local function true_up(delta)
  local tpm = tonumber(ARGV[13])
  if tpm <= 0 or delta == 0 then
    return
  end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
  local tat = tonumber(redis.call('GET', KEYS[4])) or now
  if tat < now then
    tat = now
  end
  local nt = tat + delta * 60000 / tpm
  if nt > now then
    redis.call('SET', KEYS[4], string.format('%.17g', nt), 'PX', math.max(1, math.ceil(nt - now)))
  else
    redis.call('DEL', KEYS[4])
  end
end

if kind == 'o' then
  -- The marker makes a reserve script arriving after this one reserve
  -- nothing; one orphan is released once per candidate month, so an
  -- existing marker does not stop the others.
  redis.call('SET', KEYS[1], kind, 'PX', ARGV[12])
  local found = false
  for c = 1, C do
    local h, z = KEYS[4 + (c - 1) * 2 + 1], KEYS[4 + (c - 1) * 2 + 2]
    if redis.call('ZREM', z, member) == 1 then
      found = true
      if reserved_tokens > 0 then
        redis.call('HINCRBY', h, 'reserved', -reserved_tokens)
      end
    end
  end
  if not found then
    return {0}
  end
  true_up(-reserved_tokens)
  return {1}
end

if not redis.call('SET', KEYS[1], kind, 'NX', 'PX', ARGV[12]) then
  return {0}
end

local settle = kind == 's' or kind == 'l'
local counted = tonumber(ARGV[4])
local cap_expire = ARGV[11]
local held = ARGV[16] == '1'
local gone = false
local out = {1}

local pos = 17
for c = 1, C do
  local h, z = KEYS[4 + (c - 1) * 2 + 1], KEYS[4 + (c - 1) * 2 + 2]
  local limit = tonumber(ARGV[pos])
  local label = ARGV[pos + 1]
  local n = tonumber(ARGV[pos + 2])
  -- The reservation may have expired and been purged: the usage still counts.
  local score = lease_keep > 0 and redis.call('ZSCORE', z, member)
  if redis.call('ZREM', z, member) == 1 then
    if reserved_tokens > 0 then
      redis.call('HINCRBY', h, 'reserved', -reserved_tokens)
    end
    if score then
      -- The lease lives on as its next generation, with the same expiry.
      redis.call('ZADD', z, score, lease_next .. ':' .. lease_keep)
      redis.call('HINCRBY', h, 'reserved', lease_keep)
    end
  elseif held then
    gone = true
  end
  if settle and counted > 0 then
    local used = redis.call('HINCRBY', h, 'used', counted)
    if used == counted then
      -- First usage in this hash (a fail-open settlement may create it).
      redis.call('PEXPIREAT', h, cap_expire)
    end
    for i = 1, n do
      local thr = tonumber(ARGV[pos + 2 + i])
      if used * 100 >= thr * limit and redis.call('HSETNX', KEYS[3], label .. ':' .. thr, used) == 1 then
        redis.call('PEXPIREAT', KEYS[3], cap_expire)
        out[#out + 1] = c
        out[#out + 1] = thr
        out[#out + 1] = used
      end
    end
  end
  pos = pos + 3 + n
end
if gone then
  out[1] = 2
end

-- The ledger's metric names (the last part of a field) are the metric*
-- constants in keys.go, which the Go side reads back by: keep them equal.
local p = ARGV[5]
local ledger = KEYS[2]
local first
if settle then
  first = nreq == 0 or redis.call('HINCRBY', ledger, p .. 'requests', nreq) == nreq
  local names = {'input', 'output', 'cache_read', 'cache_write'}
  for i = 1, 4 do
    local v = tonumber(ARGV[5 + i])
    if v ~= 0 then
      redis.call('HINCRBY', ledger, p .. names[i], v)
    end
  end
  if counted ~= 0 then
    redis.call('HINCRBY', ledger, p .. 'counted', counted)
  end
  if nest > 0 then
    redis.call('HINCRBY', ledger, p .. 'estimated', nest)
  end
  if nerr > 0 then
    redis.call('HINCRBY', ledger, p .. 'errors', nerr)
  end
else
  first = redis.call('HINCRBY', ledger, p .. 'errors', 1) == 1
end
if first then
  -- The ledger hash only grows, so its expiry needs setting once per line.
  redis.call('PEXPIREAT', ledger, ARGV[10])
end

-- The per-day ledger: the same fields in the day of Redis TIME, picked among
-- the candidate days of the month Go passes after the caps' arguments
-- (ARGV[pos] D, then the D days' start ms, ascending; their hashes are the
-- last D keys). A time outside them (a settlement written late, after an
-- outage) counts on the nearest, so the days add up to the month.
local D = tonumber(ARGV[pos]) or 0
if D > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
  local pick = 1
  for d = 2, D do
    if now >= tonumber(ARGV[pos + d]) then
      pick = d
    end
  end
  local day = KEYS[4 + 2 * C + pick]
  -- The same counts as the monthly ledger line above (a lease batch
  -- counts its calls).
  local incr = {{'errors', 1}}
  if settle then
    incr = {{'requests', nreq}, {'input', ARGV[6]}, {'output', ARGV[7]}, {'cache_read', ARGV[8]},
      {'cache_write', ARGV[9]}, {'counted', counted}, {'estimated', nest}, {'errors', nerr}}
  end
  for _, f in ipairs(incr) do
    local v = tonumber(f[2])
    if v ~= 0 then
      redis.call('HINCRBY', day, p .. f[1], v)
    end
  end
  redis.call('PEXPIREAT', day, ARGV[10])
end

-- A lease that lives on keeps its tokens on the per-minute limit too.
local delta = -reserved_tokens
if out[1] == 1 then
  delta = delta + lease_keep
end
if settle then
  delta = delta + counted
end
true_up(delta)

-- A returned lease gives its unused request slots back to the RPM limit:
-- the GCRA moves back as if they had never been taken (never before now),
-- so a lease returned early costs the account nothing of its limit. Not
-- for a lease Redis had already lost: its slots are long refilled.
if slots_back > 0 and slots_rpm > 0 and out[1] == 1 then
  local key = KEYS[#KEYS]
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
  local tat = tonumber(redis.call('GET', key))
  if tat and tat > now then
    local nt = tat - slots_back * 60000 / slots_rpm
    if nt > now then
      redis.call('SET', key, string.format('%.17g', nt), 'PX', math.max(1, math.ceil(nt - now)))
    else
      redis.call('DEL', key)
    end
  end
end
return out
