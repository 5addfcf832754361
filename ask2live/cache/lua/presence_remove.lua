-- Removes a member once: the caller that removes it tells the room it left. KEYS[3] is
-- the member's user's connections in the room.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 1
end
return 0
