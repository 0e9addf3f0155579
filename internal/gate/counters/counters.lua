-- Rate-limit counters of the Waygate gate, shared by its replicas. One call
-- decides a batch of requests, in order, and counts each against its limits,
-- in order, stopping at the first that refuses it; atomically. take() is
-- take() of algorithms.go statement for statement (times in Unix
-- microseconds, which doubles hold exactly; state stored as packed doubles,
-- so it reads back exactly and costs no text formatting).
--
-- The time is Redis's (TIME), not the gates': replicas whose clocks differ
-- still count one window, and the keys' time to live is exact. The gate
-- turns the times returned into its own clock by their offset from now.
--
-- KEYS      the counters of every limit of every request, in order: a, b
--           and c of counterState as three packed doubles (one GET and one
--           SET PX per limit)
-- ARGV[...] per request: its number of limits, then per limit: algorithm
--           (1 fixed_window, 2 sliding_window, 3 token_bucket), count,
--           burst, period (µs)
-- returns   now, then per request: the number of limits counted, then per
--           limit counted: allowed (1 or 0), remaining, reset, retry
local call, pack, unpack, tonumber = redis.call, struct.pack, struct.unpack, tonumber
local ceil, floor, min, max = math.ceil, math.floor, math.min, math.max
local time = call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local out = {now}

local function ceilus(x)
  return ceil(x - 1e-3)
end

local function save(key, a, b, c, expires)
  -- Until the counter is worth nothing more than a new one.
  call('SET', key, pack('ddd', a, b, c), 'PX', max(ceil((expires - now) / 1000), 1))
end

local function take(key, arg)
  local alg, count, burst, period = tonumber(ARGV[arg]), tonumber(ARGV[arg + 1]), tonumber(ARGV[arg + 2]), tonumber(ARGV[arg + 3])
  local capacity = count + burst
  local st = call('GET', key)
  local exists = st ~= false
  local a, b, c = 0, 0, 0
  if exists then
    a, b, c = unpack('ddd', st)
  end
  local allowed, remaining, reset, retry = 0, 0, 0, 0
  if alg == 3 then
    local perus = count / period
    local tokens = capacity
    if exists then
      tokens = min(capacity, c + max(now - a, 0) * perus)
    end
    if tokens >= 1 then
      tokens = tokens - 1
      allowed = 1
    else
      retry = now + ceilus((1 - tokens) / perus)
    end
    local full = now + ceilus((capacity - tokens) / perus)
    save(key, now, b, tokens, full)
    remaining = floor(tokens)
    reset = full
  elseif alg == 2 then
    local idx = floor(now / period)
    if not exists or idx > a + 1 then
      b, c = 0, 0
    elseif idx == a + 1 then
      b, c = 0, b
    end
    local start = idx * period
    local weight = 1 - (now - start) / period
    local used = c * weight + b
    reset = start + period
    if used + 1 <= capacity then
      b = b + 1
      used = used + 1
      allowed = 1
    else
      -- slidingRetry
      local room, prev, from = capacity - 1 - b, c, start
      if room < 0 then
        room, prev, from = capacity - 1, b, start + period
      end
      if prev <= room then
        retry = from
      else
        retry = from + ceilus(period * (1 - room / prev))
      end
    end
    save(key, idx, b, c, start + 2 * period)
    remaining = max(floor(capacity - used), 0)
  else
    local idx = floor(now / period)
    if not exists or a ~= idx then
      b = 0
    end
    local e = (idx + 1) * period
    reset = e
    if b < capacity then
      b = b + 1
      allowed = 1
    else
      retry = e
    end
    save(key, idx, b, c, e)
    remaining = capacity - b
  end
  return allowed, remaining, reset, retry
end

local k, arg = 1, 1
while arg <= #ARGV do
  local n = tonumber(ARGV[arg])
  arg = arg + 1
  local counted = #out + 1
  out[counted] = 0
  for i = 0, n - 1 do
    local allowed, remaining, reset, retry = take(KEYS[k + i], arg + 4 * i)
    out[#out + 1] = allowed
    out[#out + 1] = remaining
    out[#out + 1] = reset
    out[#out + 1] = retry
    out[counted] = out[counted] + 1
    if allowed == 0 then
      break
    end
  end
  -- The limits not counted still have their keys and arguments.
  k, arg = k + n, arg + 4 * n
end
return out
