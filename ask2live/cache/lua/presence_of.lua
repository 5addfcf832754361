-- The live members of some users, in one round trip. KEYS: presence (member → expiry),
-- members (member → info), then each user's connections. ARGV: now (ms).
-- Returns {member, info, member, info, ...}.
local out = {}
for i = 3, #KEYS do
  for _, member in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
    local expiry = redis.call('ZSCORE', KEYS[1], member)
    if expiry and tonumber(expiry) >= tonumber(ARGV[1]) then
      local info = redis.call('HGET', KEYS[2], member)
      if info then
        out[#out + 1] = member
        out[#out + 1] = info
      end
    end
  end
end
return out
