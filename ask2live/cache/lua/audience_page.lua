-- A page of the room's audience in join order, in one round trip. KEYS: roster, members.
-- ARGV: the position to start after ('' for the first page), how many.
-- Returns {count, next position or '', info...}.
local count = redis.call('ZCARD', KEYS[1])
local min = ARGV[1] == '' and '-inf' or '(' .. ARGV[1]
local limit = tonumber(ARGV[2])
local page = redis.call('ZRANGEBYSCORE', KEYS[1], min, '+inf', 'WITHSCORES', 'LIMIT', 0, limit + 1)
local out = {count, ''}
local n = math.min(#page / 2, limit)
if #page / 2 > limit then out[2] = page[2 * limit] end
for i = 1, n do
  local info = redis.call('HGET', KEYS[2], page[2 * i - 1])
  if info then out[#out + 1] = info end
end
return out
