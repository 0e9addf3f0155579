-- Rate-limit counters of the Waygate gate, shared by its replicas: one call
-- counts a request against each of its limits, in order, and stops at the
-- first that refuses it, atomically. It is take() of internal/gate/limit.go
-- statement for statement (times in Unix microseconds, which doubles hold
-- exactly; state stored with 17 digits, so it reads back exactly).
--
-- KEYS[i]   the counter of limit i: "a b c" as in counterState, one string
--           (one GET and one SET PX per limit: the fewest commands)
-- ARGV[1]   now
-- ARGV[...] per limit: algorithm (1 fixed_window, 2 sliding_window,
--           3 token_bucket), count, burst, period (µs)
-- returns   per limit counted: allowed (1 or 0), remaining, reset, retry
local now = tonumber(ARGV[1])
local out = {}

local function ceilus(x)
  return math.ceil(x - 1e-3)
end

local function save(key, a, b, c, expires)
  -- A second after the counter is worth nothing more than a new one (as a
  -- time to live: the gate's clock and Redis's may differ).
  redis.call('SET', key, string.format('%.17g %.17g %.17g', a, b, c), 'PX', string.format('%d', math.ceil((expires - now) / 1000) + 1000))
end

for i, key in ipairs(KEYS) do
  local j = 1 + (i - 1) * 4
  local alg, count, burst, period = tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]), tonumber(ARGV[j + 3]), tonumber(ARGV[j + 4])
  local capacity = count + burst
  local st = redis.call('GET', key)
  local exists = st ~= false
  local a, b, c = 0, 0, 0
  if exists then
    local sa, sb, sc = string.match(st, '^(%S+) (%S+) (%S+)$')
    a, b, c = tonumber(sa), tonumber(sb), tonumber(sc)
  end
  local allowed, remaining, reset, retry = 0, 0, 0, 0
  if alg == 3 then
    local perus = count / period
    local tokens = capacity
    if exists then
      tokens = math.min(capacity, c + math.max(now - a, 0) * perus)
    end
    if tokens >= 1 then
      tokens = tokens - 1
      allowed = 1
    else
      retry = now + ceilus((1 - tokens) / perus)
    end
    local full = now + ceilus((capacity - tokens) / perus)
    save(key, now, b, tokens, full)
    remaining = math.floor(tokens)
    reset = full
  elseif alg == 2 then
    local idx = math.floor(now / period)
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
    remaining = math.max(math.floor(capacity - used), 0)
  else
    local idx = math.floor(now / period)
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
  out[#out + 1] = allowed
  out[#out + 1] = remaining
  out[#out + 1] = reset
  out[#out + 1] = retry
  if allowed == 0 then
    break
  end
end
return out
