-- Creates a room's stream from events already in the cold store (they are not read by
-- the group again: it starts at '$'), and sets the epoch. No-op if the stream exists.
-- The stage (KEYS[3] speakers, KEYS[4] hands), as the cold store's events leave it, is
-- restored too where Redis lost it as well (a surviving set is newer: it is kept).
-- ARGV: epoch, key TTL, #speakers, #hands, the speakers, the hands, then (id, type, body)
-- per event.
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('GET', KEYS[2]) or '' end
local speakers, hands = tonumber(ARGV[3]), tonumber(ARGV[4])
local first = 5
for i, key in ipairs({KEYS[3], KEYS[4]}) do
  local count = (i == 1) and speakers or hands
  if count > 0 and redis.call('EXISTS', key) == 0 then
    -- one at a time: unpack() of thousands of ids would overflow Lua's stack
    for j = first, first + count - 1 do redis.call('SADD', key, ARGV[j]) end
    redis.call('EXPIRE', key, ARGV[2])
  end
  first = first + count
end
for i = first, #ARGV, 3 do
  redis.call('XADD', KEYS[1], ARGV[i], 't', ARGV[i + 1], 'e', ARGV[i + 2])
end
redis.call('XGROUP', 'CREATE', KEYS[1], 'coldstore', '$', 'MKSTREAM')
redis.call('SET', KEYS[2], ARGV[1])
return ARGV[1]
