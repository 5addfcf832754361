-- Removes a member once: the caller that removes it tells the room it left. KEYS: presence,
-- members, the member's user's connections, the roster, the audience's pending changes.
-- ARGV: member, the change to tell the audience ('' for none), how many changes to keep.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
  if ARGV[2] ~= '' then
    redis.call('RPUSH', KEYS[5], ARGV[2])
    redis.call('LTRIM', KEYS[5], -tonumber(ARGV[3]), -1)
  end
  return 1
end
return 0
