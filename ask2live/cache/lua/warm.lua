-- Creates a room's stream from events already in the cold store (they are not read by
-- the group again: it starts at '$'), and sets the epoch. No-op if the stream exists.
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('GET', KEYS[2]) or '' end
for i = 2, #ARGV, 3 do
  redis.call('XADD', KEYS[1], ARGV[i], 't', ARGV[i + 1], 'e', ARGV[i + 2])
end
redis.call('XGROUP', 'CREATE', KEYS[1], 'coldstore', '$', 'MKSTREAM')
redis.call('SET', KEYS[2], ARGV[1])
return ARGV[1]
