-- ARGV: prefix, id. Returns 'cancelled' (it was queued), 'requested' (it runs: its worker is
-- told), 'missing', or 'final:<state>' when it has finished.
local id = ARGV[2]
local key = job_key(id)
local h = redis.call('HMGET', key, 'state', 'entry')
local state = h[1]
if not state then return 'missing' end
local now = now_ms()
if state == 'waiting' or state == 'delayed' then
  redis.call('ZREM', DELAYED, id)
  ack(h[2])
  finish(id, state, 'cancelled', now)
  return 'cancelled'
end
if state == 'running' then
  redis.call('HSET', key, 'cancel_requested', 1)
  redis.call('PUBLISH', P .. 'cancel', id)
  return 'requested'
end
return 'final:' .. state
