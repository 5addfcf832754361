-- The room's audience, for one `audience` event: at most one a room per interval, whichever
-- process asks first. KEYS: roster, pending changes, the interval lock, the last count told.
-- ARGV: the interval in ms.
-- Returns false while the interval runs (ask again later), {} when there is nothing new to
-- tell, else {count, changes...} (the changes are taken).
if redis.call('EXISTS', KEYS[3]) == 1 then return false end
local changes = redis.call('LRANGE', KEYS[2], 0, -1)
local count = redis.call('ZCARD', KEYS[1])
if #changes == 0 and redis.call('GET', KEYS[4]) == tostring(count) then return {} end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[3], 1, 'PX', ARGV[1])
redis.call('SET', KEYS[4], count, 'EX', 86400)
local out = {count}
for _, change in ipairs(changes) do out[#out + 1] = change end
return out
