-- Appends an event; refuses (nil) when the stream does not exist, so that only WARM
-- creates a stream (a re-created stream must first be warmed from the cold store).
-- Returns the new id and the entries after ARGV[2] up to it, for in-order local delivery.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 't', ARGV[3], 'e', ARGV[4], 'o', ARGV[6])
if ARGV[2] == '' then return {id, {}} end
return {id, redis.call('XRANGE', KEYS[1], '(' .. ARGV[2], id, 'COUNT', ARGV[5])}
