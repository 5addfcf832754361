-- Adds a member (a connection, "<user id>:<conn>") to a room, and returns the connections of
-- its user in the room, oldest first.
-- KEYS: presence (member → expiry ms), members (member → info), the user's connections
-- (member → join ms), the roster sequence, the roster (member → join order: the audience's
-- pages), the audience's pending changes.
-- ARGV: member, expiry ms, info, now ms, key TTL s, the change to tell the audience ('' for
-- none), how many pending changes to keep at most.
local seq = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[5], seq, ARGV[1])
if ARGV[6] ~= '' then
  redis.call('RPUSH', KEYS[6], ARGV[6])
  redis.call('LTRIM', KEYS[6], -tonumber(ARGV[7]), -1)
  redis.call('EXPIRE', KEYS[6], ARGV[5])
end
for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return redis.call('ZRANGE', KEYS[3], 0, -1)
