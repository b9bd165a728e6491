-- ARGV: prefix, id. Deletes a job whatever its state; a worker running it loses its lease.
local id = ARGV[2]
local key = job_key(id)
local h = redis.call('HMGET', key, 'state', 'entry')
if not h[1] then return 0 end
redis.call('ZREM', index_key(h[1]), id)
redis.call('ZREM', DELAYED, id)
ack(h[2])
redis.call('DEL', key)
return 1
