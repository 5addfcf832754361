-- Trims what the group has persisted, keeping the last ARGV[1] entries for history.
-- Persisted: at or before the group's last-delivered id and before the oldest pending.
local function before(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local keep = tonumber(ARGV[1])
if redis.call('XLEN', KEYS[1]) <= keep then return 0 end
local delivered = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, last = nil, nil
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  if name == 'coldstore' then delivered = last end
end
if delivered == nil then return 0 end
local bound = delivered
local pending = redis.call('XPENDING', KEYS[1], 'coldstore')
if pending[1] > 0 and before(pending[2], bound) then bound = pending[2] end
local tail = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', keep)
local keep_from = tail[#tail][1]
if before(keep_from, bound) then bound = keep_from end
return redis.call('XTRIM', KEYS[1], 'MINID', bound)
