-- ARGV: prefix, id. Runs a failed, dead or cancelled job again, from attempt 1; the token keeps
-- growing so a delivery of its earlier life stays fenced. Returns 'ok', 'missing' or the state.
local id = ARGV[2]
local key = job_key(id)
local state = redis.call('HGET', key, 'state')
if not state then return 'missing' end
if state ~= 'failed' and state ~= 'dead' and state ~= 'cancelled' then return state end
local now = now_ms()
redis.call('HDEL', key, 'cancel_requested', 'started_at', 'finished_at', 'run_at', 'result',
  'progress', 'worker')
redis.call('HSET', key, 'attempts', 0)
push_ready(id, state, now, now)
redis.call('HINCRBY', METRICS, 'requeued', 1)
return 'ok'
